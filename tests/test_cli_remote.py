"""`spell remote|push|pull` as real subprocesses, against file:// and a real SeaweedFS on 127.0.0.1.

A "clone" is what a fresh `git clone` of a committed workspace holds when the
objects stayed out of git: sessions/ and spell.yaml, no .spell/objects.
"""

from __future__ import annotations

import http.client
import http.server
import itertools
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from spellfs import Workspace, init_workspace

from conftest import loose, run_spell, two_versions_added

_prefixes = itertools.count()
BUCKET = "spellfs-cli-test"
CONTENT = {
    "notes.md": b"# Notes\nfirst line\n",
    "data.bin": bytes(range(256)) * 200,  # above the threshold: zstd-framed object
    "empty.txt": b"",
}


def clean_env(extra: dict | None = None) -> dict:
    """The caller's AWS settings never leak in; only what the test passes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_CONFIG_FILE"] = os.devnull
    env.update(extra or {})
    return env


class Target:
    """Where a test's remote lives, and the environment a `spell` subprocess needs to reach it."""

    def __init__(self, kind: str, url: str, args: list[str], env: dict, server=None) -> None:
        self.kind, self.url, self.args, self.env, self.server = kind, url, args, env, server

    def spell(
        self, *args: str, cwd: Path, env: dict | None = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        proc = run_spell(*args, cwd=cwd, env=clean_env({**self.env, **(env or {})}))
        if check:
            assert proc.returncode == 0, (args, proc.stdout.decode(), proc.stderr.decode())
        return proc


@pytest.fixture(params=["file", "s3"])
def target(request, tmp_path) -> Target:
    if request.param == "file":
        return Target("file", (tmp_path / "remote").as_uri(), [], {})
    server = request.getfixturevalue("seaweed")
    if BUCKET not in server.buckets:
        server.create_bucket(BUCKET)
    return Target(
        "s3",
        f"s3://{BUCKET}/cli{next(_prefixes)}",
        ["--endpoint-url", server.endpoint],
        server.env(),
        server,
    )


@pytest.fixture
def file_target(tmp_path) -> Target:
    return Target("file", (tmp_path / "remote").as_uri(), [], {})


def make_workspace(root: Path, target: Target) -> dict:
    """A workspace with two sessions, versions, a checkpoint and a recorded run; returns ids."""
    init_workspace(root)
    with Workspace.open(root) as ws:
        a = ws.sessions.create("alpha")
        for name, data in CONTENT.items():
            ws.artifacts.store(a, "user_input", name, data)
        ws.history.save(a, "first")
        ws.artifacts.store(a, "user_input", "notes.md", CONTENT["notes.md"] + b"second line\n")
        b = ws.sessions.create("beta")
        ws.artifacts.store(b, "user_input", "only-beta.txt", b"beta's own\n")
    (root / "make.lua").write_text(f'Artifact.store("{a}", "tool_result", "out.txt", "from lua")\n')
    target.spell("run", "make.lua", cwd=root)
    target.spell("remote", "add", "origin", target.url, *target.args, cwd=root)
    return {"a": a, "b": b}


def clone(src: Path, dst: Path) -> Path:
    """sessions/ and spell.yaml only, as a git clone without the objects would have."""
    dst.mkdir()
    shutil.copytree(src / "sessions", dst / "sessions")
    shutil.copy(src / "spell.yaml", dst / "spell.yaml")
    return dst


def local_objects(root: Path) -> list[Path]:
    base = root / ".spell" / "objects"
    return [p for p in base.glob("??/*") if not p.name.startswith(".")] if base.is_dir() else []


def object_ids(root: Path) -> list[str]:
    """Every object in the workspace's store, loose or packed (small ones are in packs)."""
    from spellfs.store import FsObjectStore

    return list(FsObjectStore(root / ".spell" / "objects", 0))


def cat(target: Target, root: Path, sid: str, name: str, **kw) -> subprocess.CompletedProcess:
    return target.spell("cat", sid, name, cwd=root, **kw)


# -- remote add / list / remove -----------------------------------------------------------


def test_remote_add_list_remove_round_trip(tmp_path):
    root = tmp_path / "ws"
    init_workspace(root)
    yaml = root / "spell.yaml"
    yaml.write_text(
        "# my settings\nsessions:\n  max_sessions: 7  # seven is plenty\n# trailing note\n"
    )
    secret = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cr3t-do-not-write"}
    t = Target("file", "", [], secret)
    out = t.spell(
        "remote",
        "add",
        "origin",
        "s3://my-bucket/team/a",
        "--endpoint-url",
        "http://127.0.0.1:9",
        "--region",
        "eu-west-1",
        cwd=root,
    ).stdout.decode()
    assert out == "added remote origin: s3://my-bucket/team/a (default)\n"
    t.spell("remote", "add", "backup", (tmp_path / "bk").as_uri(), cwd=root)
    text = yaml.read_text()
    assert "# my settings" in text and "# seven is plenty" in text and "# trailing note" in text
    assert "max_sessions: 7" in text
    assert "s3cr3t" not in text and "AKID" not in text
    listed = json.loads(t.spell("remote", "list", "--json", cwd=root).stdout)
    assert [(r["name"], r["default"]) for r in listed] == [("origin", True), ("backup", False)]
    assert listed[0] == {
        "name": "origin",
        "url": "s3://my-bucket/team/a",
        "endpoint_url": "http://127.0.0.1:9",
        "region": "eu-west-1",
        "default": True,
    }
    table = t.spell("remote", "list", cwd=root).stdout.decode()
    assert "origin" in table and "backup" in table and "eu-west-1" in table

    for args, needle in (
        (["add", "origin", "file:///tmp/x"], "remote already exists: origin"),
        (["add", "bad", "http://example.com/x"], "not a remote URL"),
        (["add", "rel", "file://relative/path"], "not a remote URL"),
        (
            ["add", "ep", "s3://my-bucket", "--endpoint-url", "http://user:pw@127.0.0.1:9"],
            "credentials",
        ),
        (["remove", "nope"], "remote not found: nope"),
    ):
        proc = t.spell("remote", *args, cwd=root, check=False)
        err = proc.stderr.decode()
        assert proc.returncode == 2, (args, err)
        assert needle in err and err.count("\n") == 1, err
    assert yaml.read_text() == text  # refused changes leave the file alone

    t.spell("remote", "remove", "origin", cwd=root)
    listed = json.loads(t.spell("remote", "list", "--json", cwd=root).stdout)
    assert [(r["name"], r["default"]) for r in listed] == [("backup", True)]
    t.spell("remote", "remove", "backup", cwd=root)
    assert "no remotes" in t.spell("remote", "list", cwd=root).stdout.decode()
    final = yaml.read_text()
    assert (
        "remotes" not in final
        and "# my settings" in final
        and "max_sessions: 7  # seven is plenty" in final
    )


def test_remote_add_keeps_the_default_template_comments(tmp_path, file_target):
    root = tmp_path / "ws"
    init_workspace(root)
    before = (root / "spell.yaml").read_text()
    file_target.spell("remote", "add", "origin", file_target.url, cwd=root)
    after = (root / "spell.yaml").read_text()
    assert after.startswith(before) and "remotes:\n  origin:\n    url: " in after
    file_target.spell("remote", "remove", "origin", cwd=root)
    assert (root / "spell.yaml").read_text() == before


def test_remote_add_never_replaces_or_writes_through_a_linked_spell_yaml(tmp_path):
    """A shared spell.yaml kept as a link stays a link, and what it points to (which a cloned
    repository could aim outside the workspace) is never written: one line says so."""
    root = tmp_path / "ws"
    init_workspace(root)
    shared = tmp_path / "shared.yaml"
    shared.write_text("# the team's settings\n")
    (root / "spell.yaml").unlink()
    (root / "spell.yaml").symlink_to(shared)
    proc = run_spell("remote", "add", "origin", f"file://{tmp_path}/r", cwd=root)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"Error: spell.yaml is a link to {shared}: not rewritten")
    assert (root / "spell.yaml").is_symlink() and os.readlink(root / "spell.yaml") == str(shared)
    assert shared.read_text() == "# the team's settings\n"


def test_remote_urls_with_control_characters_are_refused(tmp_path):
    """A URL holding ESC or a newline would be printed raw by `remote ls` and every push or
    pull error (terminal escape codes): refused, spell.yaml untouched (red-team 2 M7)."""
    root = tmp_path / "ws"
    init_workspace(root)
    before = (root / "spell.yaml").read_bytes()
    for url in ("file:///tmp/r\x1b]52;c;cHduZWQ=\x07", "s3://bkt/p\nx"):
        proc = run_spell("remote", "add", "origin", url, cwd=root)
        err = proc.stderr.decode()
        assert proc.returncode == 2 and len(err.splitlines()) == 1, err
        assert err.startswith("Error: invalid remote URL: ") and "control characters" in err
    proc = run_spell("remote", "add", "o", "s3://b/p", "--endpoint-url", "http://h\x1b:1", cwd=root)
    assert proc.returncode == 2 and "control characters" in proc.stderr.decode()
    assert (root / "spell.yaml").read_bytes() == before


def test_push_and_pull_need_a_remote(tmp_path, file_target):
    root = tmp_path / "ws"
    init_workspace(root)
    for verb in ("push", "pull"):
        proc = file_target.spell(verb, cwd=root, check=False)
        assert proc.returncode == 2 and "spell remote add" in proc.stderr.decode()
    file_target.spell("remote", "add", "origin", file_target.url, cwd=root)
    proc = file_target.spell("push", "--remote", "elsewhere", cwd=root, check=False)
    assert proc.returncode == 2 and "remote not found: elsewhere" in proc.stderr.decode()


# -- push, clone, pull --------------------------------------------------------------------


def test_push_clone_pull_works_as_the_original(tmp_path, target):
    src = tmp_path / "ws"
    ids = make_workspace(src, target)
    out = target.spell("push", cwd=src).stdout.decode().strip()
    n = len(object_ids(src))
    assert out.startswith(f"pushed {n} objects (") and ", 0 already there" in out, out
    again = json.loads(target.spell("push", "--json", cwd=src).stdout)
    assert again["pushed"] == 0 and again["skipped"] == n and again["remote"] == "origin"

    dst = clone(src, tmp_path / "clone")
    pulled = json.loads(target.spell("pull", "--json", cwd=dst).stdout)
    assert pulled["pulled"] == n and pulled["skipped"] == 0
    assert object_ids(dst) == object_ids(src)
    loose(src)  # (pushed from packs; compared file to file)
    assert sorted(p.relative_to(dst).as_posix() for p in local_objects(dst)) == sorted(
        p.relative_to(src).as_posix() for p in local_objects(src)
    )
    for p in local_objects(src):
        assert (dst / p.relative_to(src)).read_bytes() == p.read_bytes()
    for name, data in CONTENT.items():
        assert cat(target, dst, ids["a"], f"{name}@1").stdout == data
    assert cat(target, dst, ids["a"], "notes.md").stdout == CONTENT["notes.md"] + b"second line\n"
    assert cat(target, dst, ids["a"], "out.txt").stdout == b"from lua"
    fsck = target.spell("fsck", "--json", cwd=dst)
    report = json.loads(fsck.stdout)
    assert report["ok"] and not report["problems"], report
    diff = target.spell("diff", ids["a"], "1", cwd=dst).stdout.decode()
    assert "notes.md" in diff
    assert "pulled 0 objects" in target.spell("pull", cwd=dst).stdout.decode()


def test_push_and_pull_named_sessions_only(tmp_path, file_target):
    src = tmp_path / "ws"
    ids = make_workspace(src, file_target)
    file_target.spell("push", ids["b"], cwd=src)
    remote = Path(file_target.url[len("file://") :])
    with Workspace.open(src) as ws:
        _, rec = ws.artifacts.find(ids["b"], "only-beta.txt")
        _, notes = ws.artifacts.find(ids["a"], "notes.md")
    assert (remote / "objects" / rec["hash"][:2] / rec["hash"][2:]).exists()
    assert not (remote / "objects" / notes["hash"][:2] / notes["hash"][2:]).exists()
    file_target.spell("push", cwd=src)
    dst = clone(src, tmp_path / "clone")
    file_target.spell("pull", ids["b"][:8], cwd=dst)
    assert len(local_objects(dst)) == 1
    assert cat(file_target, dst, ids["b"], "only-beta.txt").stdout == b"beta's own\n"


def test_git_clone_then_pull(tmp_path, file_target):
    """`spell commit` keeps objects above git.max_object_bytes out of git; they travel through the
    remote."""
    src = tmp_path / "ws"
    file_target.spell("init", "--git", str(src), cwd=tmp_path)
    (src / "spell.yaml").write_text("# team settings\ngit:\n  max_object_bytes: 1000\n")
    ids = make_workspace(src, file_target)
    big = os.urandom(5000)
    with Workspace.open(src) as ws:
        big_oid = ws.artifacts.store(ids["a"], "user_input", "big.bin", big)["content_hash"]
    git_id = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    file_target.spell(
        "commit",
        "-m",
        "work",
        cwd=src,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        },
    )
    file_target.spell("push", cwd=src)
    dst = tmp_path / "clone"
    subprocess.run(["git", *git_id, "clone", "-q", str(src), str(dst)], check=True)
    assert not (dst / ".spell" / "objects" / big_oid[:2] / big_oid[2:]).exists()
    assert "on-remote" in file_target.spell("fsck", cwd=dst).stdout.decode()
    assert cat(file_target, dst, ids["a"], "big.bin").stdout == big  # fetched on demand
    file_target.spell("pull", cwd=dst)
    assert cat(file_target, dst, ids["a"], "data.bin@1").stdout == CONTENT["data.bin"]
    report = json.loads(file_target.spell("fsck", "--json", cwd=dst).stdout)
    assert report["ok"] and not report["problems"], report


def test_a_copy_kept_out_of_git_is_written_once_its_object_is_local(tmp_path, file_target):
    """Red-team F10: a git clone lacks the copy and the object of an artifact kept out of git;
    `spell pull`, or `spell cat` fetching the object, writes the copy, and
    nothing on the clone takes its absence for a hand deletion."""
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    src = tmp_path / "ws"
    file_target.spell("init", "--git", str(src), cwd=tmp_path)
    (src / "spell.yaml").write_text("git:\n  max_object_bytes: 1000\n")
    file_target.spell("remote", "add", "origin", file_target.url, cwd=src)
    sid = file_target.spell("new", "s", cwd=src).stdout.decode().strip()
    big = os.urandom(5000)
    (tmp_path / "big.bin").write_bytes(big)
    file_target.spell("add", sid, str(tmp_path / "big.bin"), cwd=src)
    file_target.spell("commit", "-m", "work", cwd=src, env=env)
    file_target.spell("push", cwd=src)
    with Workspace.open(src) as ws:
        dir = ws.sessions.resolve(sid)
    for how in ("pull", "cat"):
        dst = tmp_path / f"clone-{how}"
        subprocess.run(["git", "clone", "-q", str(src), str(dst)], check=True, env=env)
        copy = dst / "sessions" / dir / "files" / "big.bin"
        assert not copy.exists()
        if how == "pull":
            file_target.spell("pull", cwd=dst)
        else:
            assert cat(file_target, dst, sid, "big.bin").stdout == big  # fetched on demand
        assert copy.read_bytes() == big, how
        status = file_target.spell("status", cwd=dst).stdout.decode()
        assert "by hand" not in status and "not local" not in status, (how, status)
        saved = file_target.spell("save", sid, cwd=dst).stdout.decode()
        assert "recorded hand changes" not in saved, (how, saved)
        assert copy.read_bytes() == big
        # and once here, a deletion of the copy is a deletion again
        copy.unlink()
        status = file_target.spell("status", cwd=dst).stdout.decode()
        assert "deleted by hand, not yet recorded: big.bin" in status, (how, status)


# -- on-demand fetch and fsck -----------------------------------------------------------


def test_cat_fetches_on_demand_without_pull(tmp_path, target):
    src = tmp_path / "ws"
    ids = make_workspace(src, target)
    target.spell("push", cwd=src)
    dst = clone(src, tmp_path / "clone")
    assert cat(target, dst, ids["a"], "data.bin").stdout == CONTENT["data.bin"]
    assert len(local_objects(dst)) == 1  # just the one that was read
    assert cat(target, dst, ids["a"], "notes.md@1").stdout == CONTENT["notes.md"]
    assert len(local_objects(dst)) == 2


def test_fsck_tells_on_remote_from_lost(tmp_path, target):
    src = tmp_path / "ws"
    ids = make_workspace(src, target)
    target.spell("push", cwd=src)
    dst = clone(src, tmp_path / "clone")
    proc = target.spell("fsck", cwd=dst)
    lines = proc.stdout.decode().splitlines()
    assert (
        lines
        and all(line.startswith("on-remote: ") for line in lines[:-1])
        and lines[-1].endswith(": ok")
    )
    assert "on remote origin" in lines[0]

    # One object lost everywhere: the local copy and the remote one.
    with Workspace.open(src) as ws:
        _, rec = ws.artifacts.find(ids["b"], "only-beta.txt")
    lost = rec["hash"]
    _delete_remote_object(target, lost)
    proc = target.spell("fsck", "--json", cwd=dst, check=False)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    kinds = {p["oid"]: p["kind"] for p in report["problems"]}
    assert kinds.pop(lost) == "missing-object"
    assert set(kinds.values()) == {"on-remote"} and report["on_remote"] == len(kinds)
    assert any(
        "lost" in p["detail"] and "origin" in p["detail"]
        for p in report["problems"]
        if p["oid"] == lost
    )
    proc = cat(target, dst, ids["b"], "only-beta.txt", check=False)
    assert proc.returncode == 2 and "nor on the remote" in proc.stderr.decode()
    proc = target.spell("pull", cwd=dst, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "remote origin" in err and lost in err and err.count("\n") == 1
    # Everything else arrived and verifies.
    report = json.loads(target.spell("fsck", "--json", cwd=dst, check=False).stdout)
    assert [p["oid"] for p in report["problems"]] == [lost]


def _delete_remote_object(target: Target, oid: str) -> None:
    key = f"objects/{oid[:2]}/{oid[2:]}"
    if target.kind == "file":
        os.unlink(Path(target.url[len("file://") :]) / key)
        return
    from seaweed import signed_request

    bucket, prefix = target.url[len("s3://") :].split("/", 1)
    status = signed_request("DELETE", target.server.endpoint, f"/{bucket}/{prefix}/{key}")
    assert status in (200, 204), status


# -- failures --------------------------------------------------------------------------------


def _one_line_failure(proc: subprocess.CompletedProcess, *needles: str) -> str:
    err = proc.stderr.decode()
    assert proc.returncode == 1, (proc.returncode, err)
    assert err.startswith("Error: remote origin") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def test_s3_errors_name_the_remote_and_the_cause(tmp_path, seaweed):
    if BUCKET not in seaweed.buckets:
        seaweed.create_bucket(BUCKET)
    good = Target(
        "s3",
        f"s3://{BUCKET}/err{next(_prefixes)}",
        ["--endpoint-url", seaweed.endpoint],
        seaweed.env(),
        seaweed,
    )
    src = tmp_path / "ws"
    ids = make_workspace(src, good)

    wrong = {"AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    err = _one_line_failure(good.spell("push", cwd=src, env=wrong, check=False), "access denied")
    assert "not-the-secret" not in err

    good.spell(
        "remote", "add", "nobucket", f"s3://no-such-bucket-{os.getpid()}/x", *good.args, cwd=src
    )
    proc = good.spell("push", "--remote", "nobucket", cwd=src, check=False)
    assert (
        proc.returncode == 1
        and "remote nobucket" in proc.stderr.decode()
        and "bucket not found" in proc.stderr.decode()
    )

    from seaweed import free_ports

    dead = f"http://127.0.0.1:{free_ports(1)[0]}"
    good.spell("remote", "add", "dead", good.url, "--endpoint-url", dead, cwd=src)
    proc = good.spell("push", "--remote", "dead", cwd=src, check=False)
    assert (
        proc.returncode == 1
        and "remote dead" in proc.stderr.decode()
        and "cannot reach" in proc.stderr.decode()
    )

    # Nothing went up on those failures; a good push then does the whole job.
    good.spell("push", cwd=src)
    dst = clone(src, tmp_path / "clone")
    _one_line_failure(cat(good, dst, ids["a"], "notes.md", env=wrong, check=False), "access denied")
    assert not local_objects(dst)
    assert cat(good, dst, ids["a"], "notes.md").stdout.startswith(CONTENT["notes.md"])


class FlakyProxy:
    """An HTTP proxy in front of SeaweedFS that fails PUTs after the first ``allow`` while
    ``failing``."""

    def __init__(self, upstream: str, allow: int) -> None:
        self.upstream = upstream.split("//", 1)[1]
        self.allow, self.puts, self.failing, self.inflight = allow, 0, True, 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _any(self) -> None:
                with proxy.lock:
                    proxy.inflight += 1
                try:
                    self._forward()
                finally:
                    with proxy.lock:
                        proxy.inflight -= 1

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.command == "PUT":
                    with proxy.lock:
                        proxy.puts += 1
                        fail = proxy.failing and proxy.puts > proxy.allow
                    if fail:
                        msg = (
                            b"<?xml version='1.0'?><Error><Code>InternalError</Code>"
                            b"<Message>boom</Message></Error>"
                        )
                        self.send_response(500)
                        self.send_header("Content-Length", str(len(msg)))
                        self.end_headers()
                        self.wfile.write(msg)
                        return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    conn.putheader(k, v)  # Host included unchanged: the signature covers it
                conn.endheaders(body)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def settle(self, timeout: float = 60) -> None:
        """Wait until no request is still being forwarded (a client that gave up leaves the
        proxy finishing an upload the server has not stored yet)."""
        deadline = time.monotonic() + timeout
        while self.inflight and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not self.inflight, "the proxy is still forwarding"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def test_server_failing_mid_push_then_next_push_finishes(tmp_path, seaweed):
    if BUCKET not in seaweed.buckets:
        seaweed.create_bucket(BUCKET)
    proxy = FlakyProxy(seaweed.endpoint, allow=2)
    try:
        t = Target(
            "s3",
            f"s3://{BUCKET}/flaky{next(_prefixes)}",
            ["--endpoint-url", proxy.endpoint],
            seaweed.env(),
            seaweed,
        )
        src = tmp_path / "ws"
        ids = make_workspace(src, t)
        _one_line_failure(t.spell("push", cwd=src, check=False), "InternalError")
        proxy.settle()  # the two uploads let through have landed
        proxy.failing = False
        out = t.spell("push", cwd=src).stdout.decode()
        n = len(object_ids(src))
        assert f"pushed {n - 2} objects" in out and "2 already there" in out, out
        dst = clone(src, tmp_path / "clone")
        t.spell("pull", cwd=dst)
        assert json.loads(t.spell("fsck", "--json", cwd=dst).stdout)["ok"]
        assert cat(t, dst, ids["a"], "data.bin").stdout == CONTENT["data.bin"]
    finally:
        proxy.close()


def test_file_remote_failing_mid_push_then_next_push_finishes(tmp_path, file_target):
    src = tmp_path / "ws"
    ids = make_workspace(src, file_target)
    oids = object_ids(src)
    remote = Path(file_target.url[len("file://") :])
    blocker = remote / "objects" / oids[0][:2]
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a directory")  # every upload into this fan-out fails
    proc = file_target.spell("push", cwd=src, check=False)
    err = proc.stderr.decode()
    assert (
        proc.returncode == 1 and err.startswith("Error: remote origin") and err.count("\n") == 1
    ), err
    blocker.unlink()
    file_target.spell("push", cwd=src)
    dst = clone(src, tmp_path / "clone")
    file_target.spell("pull", cwd=dst)
    assert json.loads(file_target.spell("fsck", "--json", cwd=dst).stdout)["ok"]
    assert cat(file_target, dst, ids["a"], "notes.md@1").stdout == CONTENT["notes.md"]


def test_pull_brings_everything_it_can_past_a_lost_tree(tmp_path) -> None:
    import shutil

    from spellfs import RemoteError, Workspace, init_workspace
    from spellfs.remote.config import add_remote
    from spellfs.remote.sync import pull, push

    root, store = tmp_path / "ws", tmp_path / "remote"
    init_workspace(root)
    with Workspace.open(root) as ws:
        add_remote(ws, "origin", f"file://{store}")
        a, b = ws.sessions.create(name="a"), ws.sessions.create(name="b")
        for sid in (a, b):
            ws.artifacts.store(sid, "user_input", "x.txt", f"content of {sid}".encode())
            ws.history.save(sid, "one")
        push(ws)
        lost_tree = ws.history.checkpoints(a)[0]["tree"]
        kept = ws.artifacts.get(b, "x.txt")["metadata"]["content_hash"]
    (store / "objects" / lost_tree[:2] / lost_tree[2:]).unlink()
    shutil.rmtree(root / ".spell" / "objects")
    with Workspace.open(root) as ws:
        with pytest.raises(RemoteError, match=f"remote origin .*{lost_tree[:12]}"):
            pull(ws)
        assert ws.objects.has(kept)  # the other session's objects arrived all the same
        assert ws.artifacts.get(b, "x.txt")["content"] == f"content of {b}".encode()


def test_packed_objects_are_pushed_to_seaweedfs_and_a_pull_reads_every_artifact(tmp_path, seaweed):
    """`spell add S DIR` of 16 or more files writes their objects as one pack (store/packs.py):
    `spell push` sends each as ``objects/ab/cdef…`` with its stored bytes, and a clone's
    `spell pull` reads every version."""
    import obstore
    from obstore.store import S3Store

    from spellfs.store.objects import hash_bytes

    if BUCKET not in seaweed.buckets:
        seaweed.create_bucket(BUCKET)
    prefix = f"cli{next(_prefixes)}"
    target = Target(
        "s3", f"s3://{BUCKET}/{prefix}", ["--endpoint-url", seaweed.endpoint], seaweed.env()
    )
    src = tmp_path / "ws"
    init_workspace(src)
    sid = target.spell("new", "bulk", cwd=src).stdout.decode().strip()
    versions = two_versions_added(tmp_path, lambda d: target.spell("add", sid, str(d), cwd=src))
    packs = list((src / ".spell" / "objects" / "pack").glob("*.pack"))
    assert len(packs) == 2
    packed = b"".join(p.read_bytes() for p in packs)
    oids = {hash_bytes(c): c for contents in versions for c in contents.values()}
    assert all(content in packed for content in oids.values())
    assert not {p.parent.name + p.name for p in local_objects(src)} & set(oids)

    target.spell("remote", "add", "origin", target.url, *target.args, cwd=src)
    pushed = json.loads(target.spell("push", "--json", cwd=src).stdout)
    assert pushed["pushed"] == len(local_objects(src)) + len(oids) and pushed["skipped"] == 0
    s3 = S3Store(
        BUCKET,
        endpoint=seaweed.endpoint,
        access_key_id=seaweed.access_key,
        secret_access_key=seaweed.secret_key,
        region=seaweed.region,
        client_options={"allow_http": True},
    )
    for oid, content in oids.items():  # small: the stored form is the content itself
        key = f"{prefix}/objects/{oid[:2]}/{oid[2:]}"
        assert bytes(obstore.get(s3, key).bytes()) == content, key

    dst = clone(src, tmp_path / "clone")
    pulled = json.loads(target.spell("pull", "--json", cwd=dst).stdout)
    assert pulled["pulled"] == pushed["pushed"]
    with Workspace.open(dst) as ws:
        for name in versions[0]:
            assert ws.artifacts.get(sid, f"{name}@1")["content"] == versions[0][name], name
            assert ws.artifacts.get(sid, name)["content"] == versions[1][name], name
    assert cat(target, dst, sid, "f07.txt@1").stdout == b"version 1 of file 07\n"
    assert json.loads(target.spell("fsck", "--json", cwd=dst).stdout)["ok"] is True


def test_a_damaged_remote_copy_is_named_by_pull_and_replaced_by_push_verify(tmp_path, file_target):
    """rt2 M1, as a user meets it: a pull in a clone stops at the damaged copy, in one line
    that says how to mend it; `spell push --verify` in the workspace that has the object says
    it replaced one copy; the clone's pull then brings everything."""
    src = tmp_path / "ws"
    make_workspace(src, file_target)
    file_target.spell("push", cwd=src)
    oid = object_ids(src)[0]
    remote_copy = tmp_path / "remote" / "objects" / oid[:2] / oid[2:]
    remote_copy.write_bytes(b"damaged on the remote")
    dst = clone(src, tmp_path / "clone")
    proc = file_target.spell("pull", cwd=dst, check=False)
    err = proc.stderr.decode()
    assert proc.returncode != 0 and len(err.strip().splitlines()) == 1, err
    assert f"corrupt object {oid}: remote origin" in err and "`spell push --verify`" in err
    out = file_target.spell("push", cwd=src).stdout.decode()
    assert "damaged" not in out and "pushed 0 objects" in out  # a plain push cannot see it
    out = file_target.spell("push", "--verify", cwd=src).stdout.decode()
    assert ", 1 damaged copies replaced (remote origin)" in out, out
    loose(src)  # (replaced from a pack; compared file to file)
    victim = src / ".spell" / "objects" / oid[:2] / oid[2:]
    assert remote_copy.read_bytes() == victim.read_bytes()
    file_target.spell("pull", cwd=dst)
    assert json.loads(file_target.spell("fsck", "--json", cwd=dst).stdout)["ok"]


def test_a_remote_copy_that_decompresses_past_any_artifact_is_refused_unread(tmp_path, file_target):
    """red-team 7: a remote's copy replaced by a crafted frame (kilobytes stored, more than
    the largest artifact inside): pull and push --verify name it without decompressing it all
    (the clone's pull took 2 GB of memory)."""
    import zstandard

    src = tmp_path / "ws"
    make_workspace(src, file_target)
    file_target.spell("push", cwd=src)
    oid = object_ids(src)[0]
    remote_copy = tmp_path / "remote" / "objects" / oid[:2] / oid[2:]
    remote_copy.write_bytes(zstandard.ZstdCompressor(level=19).compress(bytes(101 << 20)))
    dst = clone(src, tmp_path / "clone")
    proc = file_target.spell("pull", cwd=dst, check=False)
    err = proc.stderr.decode()
    assert proc.returncode != 0 and "decompresses to more than 104,857,600 bytes" in err, err
    out = file_target.spell("push", "--verify", cwd=src).stdout.decode()
    assert ", 1 damaged copies replaced (remote origin)" in out, out


def test_push_verify_names_a_damaged_copy_it_has_no_object_to_replace_with(tmp_path, file_target):
    """red-team 3, P1: a clone that lacks the object cannot mend the remote's copy; its
    `push --verify` says which copy is damaged and fails, instead of passing over it."""
    src = tmp_path / "ws"
    make_workspace(src, file_target)
    file_target.spell("push", cwd=src)
    oid = object_ids(src)[0]
    (tmp_path / "remote" / "objects" / oid[:2] / oid[2:]).write_bytes(b"damaged")
    dst = clone(src, tmp_path / "clone")
    file_target.spell("remote", "add", "origin", file_target.url, cwd=dst, check=False)
    proc = file_target.spell("push", "--verify", cwd=dst, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and len(err.strip().splitlines()) == 1, err
    assert f"corrupt object {oid}: remote origin: its copy there is damaged" in err
    assert "`spell push --verify` from a workspace that has it" in err
    assert "damaged" not in file_target.spell("push", cwd=dst).stdout.decode()  # plain: as before
