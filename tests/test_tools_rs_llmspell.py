"""The rs-llmspell tools added in one module each: parameters, result shapes, confinement,
gating."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from spellfs import Workspace
from spellfs.tools import TOOLS, available


def run(tool: str, ctx=None, **params):
    return TOOLS[tool].execute(params, ctx)


def ok(tool: str, ctx=None, **params):
    out = run(tool, ctx, **params)
    assert out["success"] is True, out
    return out["result"]


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        "spell.yaml",
        "SPELL.YAML",
        ".spellignore",
        ".spell/lock",
        "templates/chat.yaml",
        "sessions/x-1/artifacts.yaml",
        "sessions/x-1/state.yaml",
        "a/../.git/HEAD",
        "calls.yaml",
        "sub/.git/config",
        "sub/.GIT/hooks/post-checkout",
    ],
)
def test_no_tool_touches_spellfs_files(root: Path, path: str) -> None:
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    ctx = SimpleNamespace(root=root)
    for op in ("write", "append", "delete", "read"):
        out = run("file_operations", ctx, operation=op, path=path, input="x")
        assert out == {
            "success": False,
            "error": f"file_operations: path belongs to spellfs, not to scripts: {path}",
        }
    out = run("file_operations", ctx, operation="copy", path="free.txt", target_path=path)
    assert out["success"] is False
    assert run("archive_handler", ctx, operation="create", path=path, input=[])["success"] is False
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_a_symlink_into_git_is_refused(root: Path) -> None:
    (root / ".git").mkdir(exist_ok=True)
    (root / "innocent").symlink_to(root / ".git")
    out = run(
        "file_operations",
        SimpleNamespace(root=root),
        operation="write",
        path="innocent/config",
        input="x",
    )
    assert "belongs to spellfs" in out["error"] and not (root / ".git" / "config").exists()


def test_a_move_or_copy_into_a_folder_is_judged_where_it_lands(root: Path) -> None:
    """`move x .` lands at `./x`: a folder named `.git` or `templates` (or a file named
    `spell.yaml`) moved or copied into the workspace root is refused like a direct write
    (red-team T1: a sandboxed script planted a `.git` whose config git then ran)."""
    ctx = SimpleNamespace(root=root)
    (root / "sub").mkdir()
    (root / "sub" / "templates").mkdir()
    (root / "sub" / "templates" / "t.yaml").write_text("name: planted\n")
    (root / "sub" / "spell.yaml").write_text("planted: true\n")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    for name in ("templates", "spell.yaml"):
        for op in ("move", "copy"):
            out = run("file_operations", ctx, operation=op, path=f"sub/{name}", target=".")
            assert out == {
                "success": False,
                "error": f"file_operations: path belongs to spellfs, not to scripts: ./{name}",
            }, (op, name, out)
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    (root / "sub" / "notes.txt").write_text("free\n")  # an ordinary file moves into a folder
    out = run("file_operations", ctx, operation="move", path="sub/notes.txt", target=".")
    assert out == {"success": True, "result": {"from": "sub/notes.txt", "to": "notes.txt"}}
    assert (root / "notes.txt").read_text() == "free\n"


def test_a_sandboxed_script_cannot_plant_a_git_repository(spell, root: Path, tmp_path) -> None:
    script = tmp_path / "plant.lua"
    script.write_text("""
    local function p(r) print(r.success) end
    p(Tool.invoke("file_operations", {operation="write", path="sub/.git/config",
      input='[core]\\n\\tfsmonitor = "touch pwned"\\n'}))
    p(Tool.invoke("file_operations", {operation="mkdir", path="sub/.git/objects"}))
    p(Tool.invoke("file_operations", {operation="move", path="sub/.git", target="."}))
    """)
    r = spell("-w", str(root), "run", "--sandbox", str(script))
    assert (r.returncode, r.stdout) == (0, b"false\nfalse\nfalse\n"), r.stderr
    assert not (root / "sub" / ".git").exists() and not (root / ".git").exists()


def test_a_script_writing_git_config_or_spell_yaml_is_refused(
    spell, root: Path, tmp_path: Path
) -> None:
    script = tmp_path / "evil.lua"
    script.write_text("""
    for _, p in ipairs({".git/config", "spell.yaml"}) do
      local r = Tool.invoke("file_operations", {operation = "write", path = p, input = "pwned"})
      print(r.success, r.error)
    end""")
    yaml_before = (root / "spell.yaml").read_bytes()
    r = spell("-w", str(root), "run", str(script))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().count("false\tfile_operations: path belongs to spellfs") == 2
    assert (root / "spell.yaml").read_bytes() == yaml_before
    assert (
        not (root / ".git" / "config").exists()
        or b"pwned" not in (root / ".git" / "config").read_bytes()
    )


def test_machine_tools_are_off_until_allowed_and_never_under_sandbox(
    spell, root: Path, tmp_path: Path
) -> None:
    script = tmp_path / "m.lua"
    script.write_text(
        'local r = Tool.invoke("process_executor", {executable = "echo", arguments = {"hi"}})\n'
        "print(r.success, r.error or r.result.stdout)\n"
    )
    r = spell("-w", str(root), "run", str(script))
    assert r.stdout.decode().strip() == (
        "false\tprocess_executor is off (add it to tools.allow in spell.yaml to enable it)"
    )
    (root / "spell.yaml").write_text("tools:\n  allow: [process_executor]\n")
    r = spell("-w", str(root), "run", str(script))
    assert r.stdout.decode().strip() == "true\thi"
    r = spell("-w", str(root), "run", "--sandbox", str(script))
    assert "not available under --sandbox" in r.stdout.decode()
    (root / "spell.yaml").write_text("tools:\n  allow: [rm_rf]\n")
    r = spell("-w", str(root), "run", str(script))
    assert (
        r.returncode == 2
        and "tools.allow: 'rm_rf' is not a tool that needs enabling" in r.stderr.decode()
    )
    assert available("calculator", [], True) is None


def test_json_processor_queries_with_jq() -> None:
    data = '{"users": [{"name": "a", "age": 30}, {"name": "b", "age": 20}]}'
    assert (
        ok(
            "json_processor",
            operation="query",
            input=data,
            query=".users[] | select(.age > 25) | .name",
        )["output"]
        == "a"
    )
    assert (
        ok(
            "json_processor",
            operation="query",
            input=json.loads(data),
            query="[.users[].age] | add",
        )["output"]
        == 50
    )
    assert ok("json_processor", operation="query", input=data, query=".users[].name")["output"] == [
        "a",
        "b",
    ]
    assert json.loads(
        ok("json_processor", operation="stringify", input={"a": 1}, pretty=True)["output"]
    ) == {"a": 1}
    assert "jq query" in run("json_processor", operation="query", input="{}", query=".[")["error"]
    assert ok("json_processor", operation="validate", input="{bad")["valid"] is False


def test_text_hash_base64_diff_csv_datetime_validation() -> None:
    assert (
        ok("text_manipulator", operation="snake_case", input="Hello WorldWide")["output"]
        == "hello_world_wide"
    )
    assert (
        ok("text_manipulator", operation="replace", input="a-b", pattern="[^a-z]", replacement=" ")[
            "result"
        ]
        == "a b"
    )
    assert (
        ok("hash_calculator", input="abc", algorithm="md5")["hash"]
        == "900150983cd24fb0d6963f7d28e17f72"
    )
    assert (
        ok(
            "hash_calculator",
            operation="verify",
            input="abc",
            algorithm="md5",
            expected_hash="900150983CD24FB0D6963F7D28E17F72",
        )["valid"]
        is True
    )
    assert (
        ok(
            "base64_encoder",
            operation="decode",
            input=ok("base64_encoder", input="héllo")["output"],
        )["output"]
        == "héllo"
    )
    diff = ok("diff_calculator", operation="text_diff", old_text="a\nb\n", new_text="a\nc\n")
    assert (diff["additions"], diff["deletions"]) == (1, 1) and "-b" in diff["diff"]
    jd = ok(
        "diff_calculator",
        operation="json_diff",
        old_json={"a": 1, "b": 2},
        new_json='{"a": 2, "c": 3}',
    )
    assert (jd["changed"], jd["removed"], jd["added"]) == (
        {"a": {"old": 1, "new": 2}},
        {"b": 2},
        {"c": 3},
    )
    csv = ok("csv_analyzer", operation="analyze", input="n,x\na,1\nb,3\n")
    assert (
        csv["rows"] == 2
        and csv["statistics"]["x"]["mean"] == 2
        and csv["column_types"]["n"] == "string"
    )
    assert (
        ok(
            "date_time_handler",
            operation="add",
            input="2024-01-01T00:00:00Z",
            amount=30,
            unit="days",
        )["datetime"]
        == "2024-01-31T00:00:00Z"
    )
    assert (
        ok(
            "date_time_handler",
            operation="diff",
            start="2024-01-01T00:00:00Z",
            end="2024-01-02T00:00:00Z",
        )["hours"]
        == 24
    )
    v = ok(
        "data_validation",
        input={"status": "x"},
        schema={"type": "object", "required": ["status", "count"]},
    )
    assert v == {"valid": False, "errors": [{"field": "count", "message": "is required"}]}
    assert (
        ok("data_validation", input="a@b.co", rules={"rules": [{"type": "email"}]})["valid"] is True
    )


def test_archive_handler_round_trip_and_refuses_escaping_members(root: Path) -> None:
    ctx = SimpleNamespace(root=root)
    (root / "a.txt").write_text("A")
    ok("archive_handler", ctx, operation="create", path="out.zip", input=["a.txt"])
    assert ok("archive_handler", ctx, operation="list", path="out.zip")["entries"] == ["a.txt"]
    ok("archive_handler", ctx, operation="extract", path="out.zip", target_path="x")
    assert (root / "x" / "a.txt").read_text() == "A"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("../../escape.txt")
        info.size = 1
        t.addfile(info, io.BytesIO(b"E"))
        info = tarfile.TarInfo(".git/config")
        info.size = 1
        t.addfile(info, io.BytesIO(b"E"))
    (root / "evil.tar").write_bytes(buf.getvalue())
    assert run("archive_handler", ctx, operation="extract", path="evil.tar")["success"] is False
    assert (
        not (root.parent.parent / "escape.txt").exists() and not (root / ".git" / "config").exists()
    )


def _tar(root: Path, name: str, members: list) -> None:
    """A tar of ``(name, linkname or None, data or None, type)`` members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for member, linkname, data, kind in members:
            info = tarfile.TarInfo(member)
            info.type = kind
            if linkname is not None:
                info.linkname = linkname
            info.size = len(data or b"")
            t.addfile(info, io.BytesIO(data) if data else None)
    (root / name).write_bytes(buf.getvalue())


@pytest.mark.parametrize(
    "members",
    [
        # a link to .git inside the target, then a member written through it: git runs
        # core.fsmonitor from .git/config on the next `git status`
        [("a", ".git", None, tarfile.SYMTYPE), ("a/config", None, b"[core]\n", tarfile.REGTYPE)],
        # a link to spell.yaml, then a file of the same name written through the link
        [("b", "spell.yaml", None, tarfile.SYMTYPE), ("b", None, b"x: 1\n", tarfile.REGTYPE)],
        # a hard link to spell.yaml, then a file of the same name: one inode, rewritten
        [("c", "spell.yaml", None, tarfile.LNKTYPE), ("c", None, b"x: 1\n", tarfile.REGTYPE)],
    ],
)
def test_archive_handler_refuses_link_members_before_writing_anything(
    root: Path, members: list
) -> None:
    """A model may pick the archive: its links must not carry a later member into
    spellfs's or git's own files (links inside the target pass tarfile's "data" filter)."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    before = {p: (root / p).read_bytes() for p in (".git/config", "spell.yaml")}
    _tar(root, "in.tar", members)
    out = run("archive_handler", SimpleNamespace(root=root), operation="extract", path="in.tar")
    assert out["success"] is False and "link" in out["error"], out
    assert {p: (root / p).read_bytes() for p in before} == before
    assert not any((root / n).is_symlink() or (root / n).exists() for n in "abc")


def test_archive_handler_refuses_a_bomb_before_writing_anything(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small archive may expand to fill the disk: the declared sizes are summed first (the
    limit is lowered here so the test stays small; the real one is 1 GiB)."""
    import zipfile

    from spellfs.tools import archive_handler

    monkeypatch.setattr(archive_handler, "MAX_EXTRACT_BYTES", 100_000, raising=False)
    with zipfile.ZipFile(root / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(3):
            z.writestr(f"zeros{i}.bin", bytes(60_000))
    assert (root / "bomb.zip").stat().st_size < 2_000
    ctx = SimpleNamespace(root=root)
    out = run("archive_handler", ctx, operation="extract", path="bomb.zip", target_path="x")
    assert out["success"] is False and "too large" in out["error"], out
    assert not (root / "x").exists()
    _tar(root, "big.tar", [(f"b{i}", None, bytes(60_000), tarfile.REGTYPE) for i in range(2)])
    out = run("archive_handler", ctx, operation="extract", path="big.tar", target_path="y")
    assert out["success"] is False and "too large" in out["error"], out
    assert not (root / "y").exists()
    ok("archive_handler", ctx, operation="list", path="bomb.zip")  # listing writes nothing


def test_uuid_component_and_deterministic_ids() -> None:
    a = ok("uuid_generator", operation="deterministic", namespace="agent", name="my-agent")["uuid"]
    assert (
        a
        == ok("uuid_generator", operation="deterministic", namespace="agent", name="my-agent")[
            "uuid"
        ]
    )
    assert ok("uuid_generator", operation="component_id", prefix="tool")["uuid"].startswith("tool_")
    assert len(ok("uuid_generator", operation="component_id", prefix="t", short=True)["uuid"]) == 10


def test_process_executor_times_out_and_never_uses_a_shell(root: Path) -> None:
    ctx = SimpleNamespace(root=root)
    out = ok("process_executor", ctx, executable="echo", arguments=["$HOME", ";", "ls"])
    assert out["stdout"] == "$HOME ; ls\n" and out["exit_code"] == 0
    slow = ok("process_executor", ctx, executable="sleep", arguments=["5"], timeout_ms=200)
    assert slow["timed_out"] is True and slow["success"] is False


def test_environment_reader_hides_secrets(monkeypatch) -> None:
    monkeypatch.setenv("MY_API_KEY", "sk-secret")
    monkeypatch.setenv("SPELLTEST_VALUE", "v")
    assert (
        "looks like a secret"
        in run("environment_reader", operation="get", variable_name="MY_API_KEY")["error"]
    )
    listed = ok("environment_reader", operation="list")["variables"]
    assert listed["MY_API_KEY"] == "[hidden]" and listed["SPELLTEST_VALUE"] == "v"


def test_http_request_and_web_search_through_configured_provider(
    ws: Workspace, fake_provider
) -> None:
    got = ok(
        "http_request",
        url=fake_provider.url + "/v1/chat/completions",
        method="POST",
        body={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        timeout_ms=5000,
    )
    assert (
        got["status_code"] == 200 and got["json"]["choices"][0]["message"]["content"] == "echo: hi"
    )
    assert (
        "no search provider configured"
        in run("web_search", SimpleNamespace(workspace=ws), input="x")["error"]
    )
    assert "must start with http" in run("http_request", url="file:///etc/passwd")["error"]
