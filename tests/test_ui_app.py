"""`spell ui` over HTTP (Starlette's TestClient and the real server): pages, read-only, safe."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from conftest import SPELL
from spellfs import Workspace
from spellfs.errors import UsageError
from spellfs.ui import check_dependencies

pytest.importorskip(
    "starlette", reason="the web extra is not installed (pip install 'spellfs[ui]')"
)
with warnings.catch_warnings():  # Starlette 1.x suggests httpx2 for its test client; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from spellfs.ui import make_app  # noqa: E402

SECRET = "# SECRET-MARKER-7f3a"
EVIL = '<script>alert("x")</script>'
EVIL_NAME = '<script>alert("x").html'  # an artifact name is one path component: no '/'


def _content(rel: str) -> bool:
    """Whether a path is the workspace's content: everything but ``.spell/``'s local state,
    and of that the object store and its .gitignore (what ``.spell/.gitignore`` lets git
    share). The rest of ``.spell/`` is rebuildable: the query index, locks, temp files,
    the working-copy stat cache (``watch-cache.sqlite``, whose -wal/-shm a read may touch)."""
    top = rel.split("/", 2)
    return top[0] != ".spell" or len(top) == 1 or top[1] in ("objects", ".gitignore")


def snapshot(root: Path) -> dict[str, str]:
    """Every file and directory of the workspace's content (sessions, records, files/,
    State, spell.yaml, objects), files by content hash and mode, directories as such."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not _content(rel):
            continue
        if p.is_dir():
            out[rel + "/"] = "dir"
        else:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            out[rel] = f"{digest} {oct(p.stat().st_mode)}"
    return out


@pytest.fixture
def site(root: Path):
    """A workspace with a session of text, JSON, image, binary and hostile artifacts, two
    checkpoints and a fork; and a client for its web view."""
    with open(root / "spell.yaml", "a") as f:
        f.write(f"\n{SECRET}\nsessions:\n  max_sessions: 500\n")
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="Report", description="quarterly", tags=["q4", "draft"])
        # a name `spell new` refuses ('/') arrives by a hand edit or a clone: the view escapes it
        ws.sessions.set_manifest_fields(sid, name="Report " + EVIL)
        ws.artifacts.store(sid, "user_input", "notes.md", "line one\nline two\nline three\n")
        ws.artifacts.store(sid, "tool_result", "data.json", '{"b": 1, "a": [1, 2]}')
        # the view judges an image by its first bytes (the browser test draws a real one)
        png = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
        ws.artifacts.store(sid, "system_generated", "chart.png", png)
        ws.artifacts.store(sid, "system_generated", "blob.bin", bytes(range(256)) * 4)
        ws.artifacts.store(sid, "user_input", EVIL_NAME, EVIL)
        ws.state.set(f"session:{sid}:note", EVIL)
        ws.history.save(sid, "first " + EVIL)
        ws.artifacts.store(sid, "user_input", "notes.md", "line one\nline 2 changed\nline three\n")
        ws.history.save(sid, "second")
        fork = ws.history.fork(sid, 1, {"name": "branch"})
        others = [ws.sessions.create(name=f"filler {i}", tags=["filler"]) for i in range(55)]
        for o in others[:5]:
            ws.sessions.complete(o)
    app = make_app(root, hosts=["testserver"])
    with TestClient(app) as client:
        yield {"root": root, "sid": sid, "fork": fork, "client": client, "png": png}


def _headers_ok(r) -> None:
    assert r.headers["x-content-type-options"] == "nosniff"
    csp = r.headers["content-security-policy"]
    assert "script-src 'none'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp


def test_every_page_renders_with_the_right_type_and_headers(site) -> None:
    c, sid = site["client"], site["sid"]
    pages = [
        "/",
        f"/s/{sid}",
        f"/s/{sid}/a/notes.md",
        f"/s/{sid}/history",
        f"/s/{sid}/checkpoint/1",
        f"/s/{sid}/diff?from=1&to=2",
        f"/s/{sid}/diff?from=1&to=now",
        f"/s/{sid}/runs",
    ]
    for url in pages:
        r = c.get(url)
        assert r.status_code == 200, (url, r.text[:500])
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        _headers_ok(r)
        assert "<script" not in r.text.lower()  # no script of ours, none of theirs
    css = c.get("/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    _headers_ok(css)
    img = c.get(f"/s/{sid}/raw/chart.png")
    assert (
        img.status_code == 200
        and img.headers["content-type"] == "image/png"
        and img.content == site["png"]
    )
    _headers_ok(img)
    dl = c.get(f"/s/{sid}/raw/blob.bin")
    assert dl.headers["content-type"] == "application/octet-stream"
    assert dl.headers["content-disposition"] == "attachment; filename*=UTF-8''blob.bin"
    assert dl.content == bytes(range(256)) * 4
    old = c.get(f"/s/{sid}/raw/notes.md?v=1&download=1")
    assert (
        old.content == b"line one\nline two\nline three\n"
        and "attachment" in old.headers["content-disposition"]
    )
    missing = c.get("/no/such/page")
    assert (
        missing.status_code == 404 and missing.headers["content-type"] == "text/html; charset=utf-8"
    )
    _headers_ok(missing)


def test_previews_text_json_image_binary_and_every_version(site) -> None:
    c, sid = site["client"], site["sid"]
    page = c.get(f"/s/{sid}/a/notes.md").text
    assert 'id="v2"' in page and 'id="v1"' in page  # every version, newest first
    assert page.index("line 2 changed") < page.index("line two")
    js = c.get(f"/s/{sid}/a/data.json").text
    assert (
        "{\n  &#34;b&#34;: 1,\n  &#34;a&#34;: [\n    1,\n    2\n  ]\n}" in js
    )  # pretty-printed, escaped
    img = c.get(f"/s/{sid}/a/chart.png").text
    assert f'<img class="preview" src="/s/{sid}/raw/chart.png?v=1"' in img
    blob = c.get(f"/s/{sid}/a/blob.bin").text
    digest = hashlib.blake2b  # the page names the content hash, whatever the store uses
    assert "binary, 1.0 KiB" in blob and re.search(r'<code class="hash">[0-9a-f]{64}</code>', blob)
    assert digest  # (the hash shown is the record's, checked against the session page below)
    session = c.get(f"/s/{sid}").text
    for name in ("notes.md", "data.json", "chart.png", "blob.bin"):
        assert f">{name}</a>" in session
    assert "q4" in session and "&#34;note&#34;" in session  # tags and State


def test_hostile_names_and_contents_are_shown_as_text(site) -> None:
    c, sid = site["client"], site["sid"]
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    for url in [
        "/?q=quarterly",
        f"/s/{sid}",
        f"/s/{sid}/history",
        f"/s/{sid}/checkpoint/1",
        f"/s/{sid}/runs",
        f"/s/{sid}/a/{EVIL_NAME}",
        f"/s/{sid}/diff?from=1&to=2",
    ]:
        r = c.get(url)
        assert r.status_code == 200, url
        assert "<script" not in r.text.lower(), url
        assert escaped in r.text or "&lt;script&gt;" in r.text, url
    art = c.get(f"/s/{sid}/a/{EVIL_NAME}").text
    assert f'<pre class="file text">{escaped}</pre>' in art
    raw = c.get(f"/s/{sid}/raw/{EVIL_NAME}")  # never served as HTML
    assert (
        raw.headers["content-type"] == "application/octet-stream"
        and "attachment" in raw.headers["content-disposition"]
        and raw.content == EVIL.encode()
    )


@pytest.mark.parametrize(
    "path",
    [
        "../../spell.yaml",
        "..%2f..%2fspell.yaml",
        "%2e%2e%2f%2e%2e%2fspell.yaml",
        "%2e%2e/%2e%2e/spell.yaml",
        "..%252f..%252fspell.yaml",
        "..\\..\\spell.yaml",
        "..%5c..%5cspell.yaml",
        "%2fetc%2fpasswd",
        "notes.md/../../../spell.yaml",
        "notes.md%00.png",
        ".%2e/.%2e/spell.yaml",
    ],
)
def test_paths_out_of_the_session_are_refused(site, path: str) -> None:
    c, sid = site["client"], site["sid"]
    for url in (
        f"/s/{sid}/a/{path}",
        f"/s/{sid}/raw/{path}",
        f"/s/{path}",
        f"/s/{path}/history",
        f"/static/{path}",
    ):
        r = c.get(url)
        assert r.status_code in (400, 404), (url, r.status_code)
        assert SECRET not in r.text and "root:" not in r.text, url


def test_read_only_every_other_method_is_405(site) -> None:
    c, sid, root = site["client"], site["sid"], site["root"]
    c.get("/")  # the index exists before the comparison
    with Workspace.open(root) as ws:
        d = "sessions/" + ws.sessions.resolve(sid)
    before = snapshot(root)
    # what is compared is the real content: manifest, records, files/, State, objects
    for rel in (
        "session.yaml",
        "artifacts.yaml",
        "checkpoints.yaml",
        "files/notes.md",
        "state.yaml",
    ):
        assert f"{d}/{rel}" in before, rel
    assert any(k.startswith(".spell/objects/") and not k.endswith("/") for k in before)
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"):
        for url in ("/", f"/s/{sid}", f"/s/{sid}/raw/notes.md", "/static/style.css", "/nowhere"):
            r = c.request(method, url, content=b"name=x")
            assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD", (method, url)
            _headers_ok(r)
    head = c.head(f"/s/{sid}")
    assert head.status_code == 200 and head.content == b""
    assert snapshot(root) == before


def test_reload_shows_hand_edits(site) -> None:
    c, sid, root = site["client"], site["sid"], site["root"]
    with Workspace.open(root) as ws:
        d = root / "sessions" / ws.sessions.resolve(sid)
    assert "Renamed by hand" not in c.get(f"/s/{sid}").text
    text = (d / "session.yaml").read_text()
    (d / "session.yaml").write_text(re.sub(r"(?m)^name: .*$", "name: Renamed by hand", text))
    assert "Renamed by hand" in c.get(f"/s/{sid}").text
    assert "Renamed by hand" in c.get("/?q=renamed").text
    (d / "files" / "notes.md").write_text("typed in an editor\n")
    session = c.get(f"/s/{sid}").text
    assert "edited on disk" in session
    art = c.get(f"/s/{sid}/a/notes.md").text
    assert 'id="on-disk"' in art and "typed in an editor" in art


def test_sessions_list_filters_counts_and_pages(site) -> None:
    c, sid, fork = site["client"], site["sid"], site["fork"]
    first = c.get("/").text
    assert re.search(r"<strong>57</strong> of 57 sessions", first)
    assert ">52 active</a>" in first and ">5 completed</a>" in first
    assert first.count('class="session-link"') == 50 and 'rel="next"' in first
    second = c.get("/?page=2").text
    assert second.count('class="session-link"') == 7 and 'rel="prev"' in second
    assert f'href="/s/{sid}"' in second  # the oldest session is on the last page
    done = c.get("/?status=completed").text
    assert done.count('class="session-link"') == 5
    tagged = c.get("/?tags=q4,draft").text
    assert (
        tagged.count('class="session-link"') == 2
    )  # the session and its fork, which kept the tags
    assert f'href="/s/{sid}"' in tagged and f'href="/s/{fork}"' in tagged
    child = c.get(f"/?parent={sid[:8]}").text
    assert child.count('class="session-link"') == 1 and f'href="/s/{fork}"' in child
    found = c.get("/?q=quarterly").text  # the description, which the fork kept
    assert found.count('class="session-link"') == 2 and "<strong>2</strong> of 57 sessions" in found
    assert c.get("/?q=branch").text.count('class="session-link"') == 1
    assert c.get("/?after=2000-01-01&before=2999-01-01").text.count('class="session-link"') == 50
    assert c.get("/?before=2000-01-01").text.count('class="session-link"') == 0
    bad = c.get("/?after=yesterday")
    assert bad.status_code == 400 and "invalid created after" in bad.text
    assert c.get("/?status=sleeping").status_code == 400
    assert "session not found" in c.get("/?parent=zzzzzzzz").text


def test_history_diff_and_checkpoint_pages(site) -> None:
    c, sid, fork = site["client"], site["sid"], site["fork"]
    hist = c.get(f"/s/{sid}/history").text
    assert (
        "<svg" in hist and f'href="/s/{sid}/checkpoint/2"' in hist and f'href="/s/{fork}"' in hist
    )
    assert f"forked from {sid[:8]} at checkpoint 1" in hist
    diff = c.get(f"/s/{sid}/diff?from=1&to=2").text
    assert '<td class="l">line two</td>' in diff and '<td class="r">line 2 changed</td>' in diff
    assert "0 added, 1 changed, 0 removed" in diff
    cp = c.get(f"/s/{sid}/checkpoint/1").text
    assert "Checkpoint 1: first" in cp and ">blob.bin</a>" in cp
    assert c.get(f"/s/{sid}/checkpoint/9").status_code == 404
    assert c.get(f"/s/{sid}/diff?from=x").status_code == 400


def test_runs_and_model_calls(root: Path, spell, fake_provider) -> None:
    (root / "ask.lua").write_bytes(b"""
local sid = Session.create({name = "asker"})
Session.setCurrent(sid)
local agent = Agent.create({name = "helper", model = "openai/fake-1", session_id = sid})
agent:invoke({messages = {{role = "user", content = "hello there friend"}}})
agent:invoke({messages = {{role = "user", content = "and <b>again</b>"}}})
Artifact.store(sid, "tool_result", "done.txt", "ok")
""")
    env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": fake_provider.url + "/v1"}
    r = spell("-w", str(root), "run", str(root / "ask.lua"), "arg1", env=env)
    assert r.returncode == 0, r.stderr
    with Workspace.open(root) as ws:
        [s] = ws.sessions.list({})
    with TestClient(make_app(root, hosts=["testserver"])) as c:
        page = c.get(f"/s/{s['id']}/runs").text
    assert "<code>ask.lua</code> <code>arg1</code>" in page and "exit 0" in page
    assert ">done.txt</a>" in page and ">helper-0001.request.json</a>" in page
    assert "hello there friend" in page and "echo: hello there friend" in page
    assert "and &lt;b&gt;again&lt;/b&gt;" in page
    # tokens summed per model: the fake counts words (3 + 3 in, 4 + 4 out)
    assert re.search(
        r"<td>openai/fake-1</td><td class=\"num\">2</td><td class=\"num\">(\d+)</td>", page
    )
    usage = re.search(
        r"<td>openai/fake-1</td><td class=\"num\">2</td><td class=\"num\">(\d+)</td>"
        r"<td class=\"num\">(\d+)</td>",
        page,
    )
    with Workspace.open(root) as ws:
        calls = [
            json.loads(json.dumps(x))
            for x in __import__("spellfs.agent", fromlist=["x"]).read_calls(
                ws, ws.sessions.resolve(s["id"])
            )
        ]
    assert int(usage.group(1)) == sum(x["input_tokens"] for x in calls)
    assert int(usage.group(2)) == sum(x["output_tokens"] for x in calls)
    assert f"{calls[0]['latency_ms']} ms" in page


def test_host_header_must_name_this_server(root: Path) -> None:
    with TestClient(make_app(root)) as c:  # the default: loopback names only
        assert c.get("/", headers={"host": "evil.example"}).status_code == 400
        assert c.get("/", headers={"host": "127.0.0.1:8765"}).status_code == 200
        assert c.get("/", headers={"host": "localhost"}).status_code == 200


def test_served_on_every_address_the_host_check_stays_on(root: Path) -> None:
    """`--host 0.0.0.0` serves the LAN, not any name: a page on evil.example that points its
    name here (DNS rebinding) is refused; this machine's own name and `--allow-host` names pass
    (red-team 2 M3: the check was off)."""
    import socket

    from spellfs.ui.server import served_hosts

    hosts = served_hosts("0.0.0.0", ["LAN-Box.example"])
    with TestClient(make_app(root, hosts=hosts)) as c:
        assert c.get("/", headers={"host": "evil.example:8765"}).status_code == 400
        for ok_host in (socket.gethostname(), "lan-box.example", "127.0.0.1:8765"):
            assert c.get("/", headers={"host": ok_host}).status_code == 200, ok_host
    assert "0.0.0.0" not in hosts and served_hosts("192.0.2.7") >= {"192.0.2.7", "localhost"}


def test_missing_web_libraries_say_how_to_install(root: Path) -> None:
    with pytest.raises(
        UsageError, match=r"spell ui needs no_such_web_lib_x.*pip install 'spellfs\[ui\]'"
    ):
        check_dependencies(("jinja2", "no_such_web_lib_x"))
    code = (
        "import sys; sys.modules['uvicorn'] = None; from spellfs.cli import main; "
        f"sys.exit(main(['-w', {str(root)!r}, 'ui']))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.strip() == (
        "Error: spell ui needs uvicorn, which is not installed "
        "(install the web extra: pip install 'spellfs[ui]')"
    )


def test_other_commands_do_not_import_the_web_libraries(root: Path) -> None:
    code = (
        "import sys; from spellfs.cli import main; main(['-w', sys.argv[1], 'ls']); "
        "print(sorted(m for m in ('starlette', 'uvicorn', 'jinja2') if m in sys.modules))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=60
    )
    assert r.stdout.strip().splitlines()[-1] == "[]"


def _start(root: Path, *args: str) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen(
        [*SPELL, "-w", str(root), "ui", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = p.stdout.readline()
    m = re.search(r"at (http://\S+/) \(Ctrl-C stops\)", line)
    assert m, line + p.stderr.read()
    return p, m.group(1)


def test_spell_ui_serves_until_ctrl_c(root: Path) -> None:
    import httpx

    p, url = _start(root)
    try:
        assert url.startswith("http://127.0.0.1:")
        r = httpx.get(url, timeout=30)
        assert r.status_code == 200 and "Sessions" in r.text
        assert httpx.post(url, timeout=30).status_code == 405
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=30) == 0
        assert p.stderr.read() == "spell ui: stopped\n"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_spell_ui_warns_when_serving_beyond_this_machine(root: Path) -> None:
    p, url = _start(root, "--host", "0.0.0.0")
    try:
        time.sleep(0.2)
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=30) == 0
        err = p.stderr.read()
        assert err.startswith(
            "warning: serving on 0.0.0.0: anyone who can reach this address can read"
        )
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert os.environ.get("SPELL_WORKSPACE") is None


def test_every_asset_ships_in_the_wheel_and_none_comes_from_elsewhere(wheel: Path) -> None:
    import zipfile

    import spellfs.ui

    here = Path(spellfs.ui.__file__).parent
    assets = sorted(
        p for d in ("templates", "static") for p in (here / d).rglob("*") if p.is_file()
    )
    assert len(assets) >= 10
    for p in assets:  # offline: no CDN, no remote font, image or script anywhere
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", p.read_text()), p
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [p.relative_to(here.parent.parent).as_posix() for p in assets]
    missing = [n for n in missing if n not in names]
    assert not missing, f"not in the wheel: {missing}"


def test_a_port_in_use_is_a_one_line_error(root: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run(
            [*SPELL, "-w", str(root), "ui", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert r.returncode == 2 and r.stderr.startswith(f"Error: cannot listen on 127.0.0.1:{port}: ")
    assert "--port 0" in r.stderr and len(r.stderr.strip().splitlines()) == 1
