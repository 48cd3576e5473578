"""`spell run` as a user meets it: the real command in a subprocess.

Lua 5.4 dialect, `arg`, print, exit codes, error messages with file and line,
workspace discovery, --sandbox, run recording hand-off.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spellfs import Workspace
from spellfs.lua.runtime import EXTRA_GLOBALS, Runtime, ScriptError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_lua54_dialect_args_and_print(root: Path, spell) -> None:
    script = write(
        root / "d.lua",
        """
print(_VERSION)
print(math.type(1), math.type(1.0), tostring(10/2), 7 // 2, 7.0 // 2, 2^53 == 2.0^53)
print(utf8.char(72, 228, 8364), utf8.len("häh"))
for i = 1, 3 do
  if i == 2 then goto continue end
  io.write(i, " ")
  ::continue::
end
print()
print(math.maxinteger, math.mininteger, math.maxinteger + 1 == math.mininteger)
print(arg[0], #arg, arg[1], arg[2], select("#", ...), ...)
print(string.format("%q", "a\\0b"), os.time() > 0, type(io.open), type(os.getenv))
print(Agent == nil)
""",
    )
    r = spell("-w", str(root), "run", str(script), "one", "--two", "thr ee")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "Lua 5.4"
    assert lines[1] == "integer\tfloat\t5.0\t3\t3.0\ttrue"
    assert lines[2] == "Hä€\t3"
    assert lines[3] == "1 3 "
    assert lines[4] == "9223372036854775807\t-9223372036854775808\ttrue"
    assert lines[5] == f"{script}\t3\tone\t--two\t3\tone\t--two\tthr ee"
    assert lines[6] == '"a\\0b"\ttrue\tfunction\tfunction'
    assert lines[7] == "true"


def test_uncaught_error_names_file_and_line(root: Path, spell) -> None:
    write(
        root / "bad.lua", "local x = 1\n\nlocal s = Session.get('zzzz9999')\nprint('not reached')\n"
    )
    r = spell("run", "bad.lua", cwd=root)
    assert r.returncode == 1
    assert r.stdout == b""
    err = r.stderr.decode()
    assert "bad.lua:3: session not found: zzzz9999" in err
    assert "Traceback" not in err


def test_error_with_plain_lua_and_non_string_error(root: Path, spell) -> None:
    write(root / "e1.lua", "print('before')\nerror('boom')\n")
    r = spell("run", "e1.lua", cwd=root)
    assert (r.returncode, r.stdout) == (1, b"before\n")
    assert "e1.lua:2: boom" in r.stderr.decode()
    # a non-string error object carries no position: the file and line that raised it are said
    write(root / "e2.lua", "local t = {}\nerror({code = 1})\n")
    r = spell("run", "e2.lua", cwd=root)
    assert r.returncode == 1
    assert r.stderr.decode() == "Error: e2.lua:2: (error object is a table value)\n"
    write(root / "e3.lua", "local function f()\n  error()\nend\nprint(pcall(f))\nf()\n")
    r = spell("run", "e3.lua", cwd=root)
    assert (r.returncode, r.stdout) == (1, b"false\tnil\n")
    assert r.stderr.decode() == "Error: e3.lua:2: (error object is a nil value)\n"


def test_syntax_error_names_file_and_line(root: Path, spell) -> None:
    write(root / "syn.lua", "print('a')\nlocal = 3\n")
    r = spell("run", "syn.lua", cwd=root)
    assert r.returncode == 1
    assert "syn.lua:2:" in r.stderr.decode() and "Traceback" not in r.stderr.decode()
    assert r.stdout == b""


def test_missing_script_is_usage_error(root: Path, spell) -> None:
    r = spell("run", "nope.lua", cwd=root)
    assert r.returncode == 2 and "script not found: nope.lua" in r.stderr.decode()


def test_shebang_line_is_skipped_and_numbering_kept(root: Path, spell) -> None:
    write(root / "sb.lua", "#!/usr/bin/env spell run\nprint('hi')\nerror('x')\n")
    r = spell("run", "sb.lua", cwd=root)
    assert r.stdout == b"hi\n" and "sb.lua:3: x" in r.stderr.decode()


def test_no_workspace_initialises_cwd_and_says_so(tmp_path: Path, spell) -> None:
    d = tmp_path / "fresh"
    d.mkdir()
    write(d / "s.lua", "print(Session.create({name='n'}) ~= nil)\n")
    r = spell("run", "s.lua", cwd=d)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"true\n"
    err = r.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "initialised" in err[0] and str(d) in err[0]
    assert (d / "spell.yaml").is_file() and len(list((d / "sessions").iterdir())) == 1


def test_workspace_found_from_subdirectory(root: Path, spell) -> None:
    sub = root / "scripts" / "deep"
    sub.mkdir(parents=True)
    write(sub / "s.lua", "Session.create({name='from sub'})\n")
    r = spell("run", "s.lua", cwd=sub)
    assert r.returncode == 0 and r.stderr == b""
    assert [p.name.startswith("from-sub-") for p in (root / "sessions").iterdir()] == [True]


def test_os_exit_sets_status_and_flushes(root: Path, spell) -> None:
    write(root / "x.lua", "io.write('partial')\nos.exit(3)\n")
    r = spell("run", "x.lua", cwd=root)
    assert (r.returncode, r.stdout) == (3, b"partial")
    write(root / "y.lua", "print('ok')\nos.exit(true)\nprint('no')\n")
    r = spell("run", "y.lua", cwd=root)
    assert (r.returncode, r.stdout) == (0, b"ok\n")


def test_binary_output_passes_unchanged(root: Path, spell) -> None:
    write(
        root / "b.lua",
        "local t = {} for i = 0, 255 do t[#t+1] = string.char(i) end io.write(table.concat(t))\n",
    )
    r = spell("run", "b.lua", cwd=root)
    assert r.stdout == bytes(range(256))


# -- sandbox -------------------------------------------------------------------------

SANDBOX_PROBES = {
    "io": "return io.open('x', 'w')",
    "os.execute": "return os.execute('true')",
    "os.remove": "return os.remove('spell.yaml')",
    "os.getenv": "return os.getenv('HOME')",
    "os.exit": "return os.exit(0)",
    "require": "return require('os')",
    "dofile": "return dofile('spell.yaml')",
    "loadfile": "return loadfile('spell.yaml')",
    "debug": "return debug.getinfo(1)",
    "package": "return package.loaded",
    "python": "return python.builtins",
}


def test_sandbox_removes_file_and_process_access(root: Path, spell) -> None:
    probes = "\n".join(
        f"do local ok, err = pcall(function() {code} end) print({name!r}, ok) end"
        for name, code in SANDBOX_PROBES.items()
    )
    write(
        root / "sb.lua",
        probes
        + """
local f = string.dump(function() return 1 end)
local chunk, err = load(f, "bytecode", "b")
print("bytecode", chunk == nil, err)
print("text load", load("return 1 + 1")())
print("env load", load("return x", "c", "t", {x = 5})())
print("kept", type(os.time), type(os.clock), type(os.date), type(string.rep), type(collectgarbage))
""",
    )
    r = spell("run", "--sandbox", "sb.lua", cwd=root)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode().splitlines()
    for line in out[: len(SANDBOX_PROBES)]:
        assert line.endswith("\tfalse"), line
    assert (
        out[len(SANDBOX_PROBES)].startswith("bytecode\ttrue\t")
        and "binary chunk" in out[len(SANDBOX_PROBES)]
    )
    assert out[-3:] == [
        "text load\t2",
        "env load\t5",
        "kept\tfunction\tfunction\tfunction\tfunction\tfunction",
    ]
    assert (root / "spell.yaml").exists()


def test_sandbox_confines_store_file_and_file_operations(root: Path, tmp_path: Path, spell) -> None:
    outside = write(tmp_path / "secret.txt", "secret")
    write(root / "inside.txt", "inside")
    write(
        root / "sb.lua",
        f"""
local sid = Session.create({{name = "sb"}})
local ok, err = pcall(Artifact.storeFile, sid, {str(outside)!r}, "user_input")
print(ok, err)
ok, err = pcall(Artifact.storeFile, sid, "../secret.txt", "user_input")
print(ok, err)
local id = Artifact.storeFile(sid, "inside.txt", "user_input")
print(Artifact.get(sid, id).content)
local r = Tool.invoke("file_operations", {{operation = "read", path = {str(outside)!r}}})
print(r.success, r.error)
print(Tool.invoke("file_operations", {{operation = "write", path = "out/new.txt", input = "w"}}).success)
""",  # noqa: E501
    )
    r = spell("run", "--sandbox", "sb.lua", cwd=root)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode().splitlines()
    assert out[0].startswith("false\t") and "outside the workspace" in out[0]
    assert out[1].startswith("false\t") and "outside the workspace" in out[1]
    assert out[2] == "inside"
    assert out[3].startswith("false\t") and "outside the allowed directory" in out[3]
    assert out[4] == "true" and (root / "out" / "new.txt").read_text() == "w"


def test_python_objects_are_unreachable_even_without_sandbox(ws: Workspace) -> None:
    rt = Runtime(ws)
    rt.install()
    code = b"""
local f
for i = 1, 10 do
  local name, value = debug.getupvalue(Session.create, i)
  if name == "pyfn" then f = value end
end
local ok, err = pcall(function() return f.__class__ end)
return type(f), ok
"""
    kind, ok = rt.lua.execute(code)
    assert kind == b"userdata" and ok is False
    assert rt.globals.python is None


# -- in-process runtime API ----------------------------------------------------------


def test_extra_globals_installers_run(ws: Workspace) -> None:
    def install(rt: Runtime, workspace: Workspace) -> None:
        rt.set_global("Agent", rt.table("Agent", {"list": lambda: rt.out(["a"])}))

    EXTRA_GLOBALS.append(install)
    try:
        rt = Runtime(ws)
        rt.install()
        assert rt.lua.execute(b"return Agent.list()[1]") == b"a"
    finally:
        EXTRA_GLOBALS.remove(install)
    rt = Runtime(ws)
    rt.install()
    assert rt.lua.execute(b"return Agent") is None


def test_script_error_from_run(ws: Workspace) -> None:
    rt = Runtime(ws)
    rt.install()
    with pytest.raises(ScriptError, match=r"^t\.lua:2: artifact not found: nope"):
        rt.run("t.lua", b"local s = Session.create({})\nArtifact.get(s, 'nope')\n")


def test_run_recorder_is_told(root: Path, spell, tmp_path: Path) -> None:
    """With spellfs.history.runs importable, `spell run` calls begin_run/finish around the
    script."""
    fake = tmp_path / "fake"
    (fake / "spellfs_fake").mkdir(parents=True)
    log = tmp_path / "runs.log"
    write(
        fake / "sitecustomize.py",
        f"""
import sys, types
mod = types.ModuleType("spellfs.history.runs")
class Run:
    def __init__(self, args): self.args = args
    def finish(self, status, error):
        open({str(log)!r}, "a").write(f"finish {{status}} {{error}}\\n")
def begin_run(ws, path, code, args, env_session=None):
    open({str(log)!r}, "a").write(f"begin {{path}} {{len(code)}} {{args}}\\n")
    run = Run(args)
    ws.run = None
    return run
mod.begin_run = begin_run
sys.modules["spellfs.history.runs"] = mod
""",
    )
    write(root / "ok.lua", "print(1)\n")
    write(root / "bad.lua", "error('no')\n")
    env = {"PYTHONPATH": str(fake) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    assert spell("run", "ok.lua", "a", cwd=root, env=env).returncode == 0
    assert spell("run", "bad.lua", cwd=root, env=env).returncode == 1
    lines = log.read_text().splitlines()
    assert lines[0] == "begin ok.lua 9 ['a']" and lines[1] == "finish 0 None"
    assert lines[2] == "begin bad.lua 12 []" and lines[3].startswith("finish 1 bad.lua:1: no")


def test_ctrl_c_stops_a_pure_lua_loop(root: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    write(root / "loop.lua", "io.write('started\\n') io.stdout:flush() while true do end\n")
    p = subprocess.Popen(
        [sys.executable, "-m", "spellfs", "run", "loop.lua"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert p.stdout.readline() == b"started\n"
    time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=10)
    finally:
        p.kill()
    assert p.returncode == -signal.SIGINT


def test_spell_session_presets_the_current_session(root, spell) -> None:
    from spellfs import Workspace

    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="preset")
    script = root / "cur.lua"
    script.write_text("print(Session.getCurrent())\n")
    r = spell("-w", str(root), "run", str(script), env={"SPELL_SESSION": sid[:8]})
    assert r.returncode == 0 and r.stdout.decode().strip() == sid
    r = spell("-w", str(root), "run", str(script), env={"SPELL_SESSION": "nope1234"})
    assert r.returncode == 2 and b"session not found: nope1234 (from $SPELL_SESSION)" in r.stderr
