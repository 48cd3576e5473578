"""Shared fixtures: a real workspace on disk, the `spell` command as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from spellfs import Workspace, init_workspace

sys.path.insert(0, str(Path(__file__).parent))

from fakeprovider import fake_provider  # noqa: E402,F401

try:  # the S3 fixture module arrives with the remotes work
    from seaweed import seaweed  # noqa: F401
except ImportError:  # pragma: no cover
    pass

SPELL = [sys.executable, "-m", "spellfs"]


#: The fields Session.get / `spell show --json` return for a session (rs-llmspell's names).
SESSION_FIELDS = {
    "id",
    "name",
    "description",
    "status",
    "tags",
    "created_at",
    "updated_at",
    "parent_session_id",
    "custom_metadata",
    "artifact_count",
    "path",
}

#: An artifact's metadata fields as Artifact.get returns them (rs-llmspell's names).
META_FIELDS = {
    "name",
    "description",
    "artifact_type",
    "mime_type",
    "size",
    "tags",
    "custom",
    "version",
    "created_at",
    "created_by",
    "is_compressed",
    "original_size",
    "content_hash",
    "sequence",
}


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's workspace or provider keys."""
    for var in (
        "SPELL_WORKSPACE",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_BASE_URL",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A fresh workspace folder."""
    ws_root = tmp_path / "ws"
    init_workspace(ws_root)
    return ws_root


@pytest.fixture
def ws(root: Path):
    with Workspace.open(root) as workspace:
        yield workspace


@pytest.fixture(params=["fs", "memory"])
def anyws(request: pytest.FixtureRequest, tmp_path: Path):
    """The same contract on both storage backends."""
    if request.param == "memory":
        workspace = Workspace.in_memory()
    else:
        init_workspace(tmp_path / "ws")
        workspace = Workspace.open(tmp_path / "ws")
    with workspace:
        yield workspace


def run_spell(
    *args: str,
    cwd: Path | str | None = None,
    input: bytes | None = None,
    env: dict | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess:
    """Run the real `spell` command in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("SPELL_WORKSPACE", None) if env is None or "SPELL_WORKSPACE" not in env else None
    return subprocess.run(
        [*SPELL, *args], cwd=cwd, input=input, capture_output=True, env=full_env, timeout=timeout
    )


@pytest.fixture
def spell():
    return run_spell


@pytest.fixture
def repo(tmp_path: Path, spell) -> Path:
    """A workspace made with `spell init --git`, a git identity set (the git tests' start)."""
    from test_git_commits import identity, ok

    root = tmp_path / "a"
    ok(spell("init", "--git", str(root)))
    identity(root, "alice")
    return root


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip wheel .` builds from this checkout (once per test process)."""
    out = tmp_path_factory.mktemp("wheel")
    repo = Path(__file__).resolve().parent.parent
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(out), str(repo)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return next(out.glob("spellfs-*.whl"))


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 64 MiB tmpfs (root can mount; this machine and CI run as root): a disk that fills."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)]).returncode
    ):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


def fill_disk(disk: Path, name: str = "filler") -> None:
    """Fill ``disk`` to the last block (the file ``name`` takes it)."""
    import errno

    fd = os.open(disk / name, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    try:
        while True:
            os.write(fd, b"\0")
    except OSError:
        pass
    os.close(fd)


class _WatchLimit:
    """libc as the kernel answers once the user's ``max_user_watches`` is reached: ENOSPC for
    the watches of the paths whose last part is in ``refused`` (the real limit is per user:
    exhausting it in a test would break every other watch on the machine)."""

    def __init__(self, real, refused: set[str]) -> None:
        self.real, self.refused = real, refused

    def inotify_init1(self, flags: int) -> int:
        return self.real.inotify_init1(flags)

    def inotify_add_watch(self, fd: int, path: bytes, mask: int) -> int:
        if os.fsdecode(os.path.basename(path)) in self.refused:
            import ctypes
            import errno

            ctypes.set_errno(errno.ENOSPC)
            return -1
        return self.real.inotify_add_watch(fd, path, mask)


@pytest.fixture
def refused(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Names (last path parts) the kernel refuses an inotify watch, as past the watch limit:
    add to the set."""
    from spellfs.store import inotify

    names: set[str] = set()
    monkeypatch.setattr(inotify, "_libc", _WatchLimit(inotify._lib(), names))
    return names


#: A script that blocks every signal it can, says "ready" and sleeps: a signal sent to it stays
#: pending, so a test can tell whether something signalled it (see pending_signals).
SIGNALS_BLOCKED = (
    "import signal, sys, time; signal.pthread_sigmask(signal.SIG_BLOCK, "
    "set(signal.Signals) - {signal.SIGKILL, signal.SIGSTOP}); print('ready', flush=True); "
    "time.sleep(60)"
)


def pending_signals(pid: int) -> int:
    """The signals sent to ``pid`` and not yet taken (its own and its thread group's)."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["SigPnd"], 16) | int(fields["ShdPnd"], 16)


@pytest.fixture
def watch_starts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of every change-feed watch (``EntryWatch``) started during the test, in order."""
    from spellfs.store.inotify import EntryWatch

    starts: list[str] = []
    start = EntryWatch.start

    def counted(self: EntryWatch) -> bool:
        starts.append(self.path)
        return start(self)

    monkeypatch.setattr(EntryWatch, "start", counted)
    return starts


def flocked(path: Path) -> bool:
    """Whether another process taking the lock file at ``path`` would have to wait."""
    import fcntl

    probe = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(probe)  # (closing drops a lock the probe took)
    return False


def loose(where: object) -> None:
    """Write every packed object (bulk packs, and the journals single stores append to) as a
    loose file, as `spell commit` does first: for a test about an object's own file (its bytes,
    age or damage). ``where``: a workspace root, an open Workspace or an FsObjectStore."""
    from spellfs.store import FsObjectStore

    if isinstance(where, FsObjectStore):
        where.unpack(lambda paths: None)
    elif isinstance(where, Workspace):
        where.objects.unpack(where.storage.fsync)  # type: ignore[attr-defined]
    else:
        with Workspace.open(where) as ws:  # type: ignore[arg-type]
            ws.objects.unpack(ws.storage.fsync)  # type: ignore[attr-defined]


def added_in_a_pack(root: Path, words: str) -> tuple[str, dict[str, bytes], Path]:
    """A session "bulk" holding 20 small files stored by `spell add S DIR`: their objects are
    one pack (store/packs.py). Returns the session id, the contents by name and the pack."""
    from spellfs import Workspace

    contents = {f"f{i:02}.txt": f"{words} {i:02}\n".encode() for i in range(20)}
    data = root.parent / "data"
    data.mkdir()
    for name, content in contents.items():
        (data / name).write_bytes(content)
    with Workspace.open(root) as ws:
        sid = ws.sessions.create(name="bulk")
    r = run_spell("-w", str(root), "add", sid, str(data))
    assert r.returncode == 0, r.stderr.decode()
    [pack] = (root / ".spell" / "objects" / "pack").glob("*.pack")
    return sid, contents, pack


def two_versions_added(tmp_path: Path, add: Callable[[Path], object]) -> list[dict[str, bytes]]:
    """Twenty small files added twice, each time as a folder by ``add(folder)`` (`spell add S
    DIR`: a bulk store, so each version's objects are one pack, and version 1 then lives only
    in its pack: no files/ copy carries it). Returns each version's contents by name."""
    versions = []
    for v in (1, 2):
        data = tmp_path / f"data{v}"
        data.mkdir()
        contents = {f"f{i:02}.txt": f"version {v} of file {i:02}\n".encode() for i in range(20)}
        for name, content in contents.items():
            (data / name).write_bytes(content)
        add(data)
        versions.append(contents)
    return versions


def store_v2_while(ws, sid: str, monkeypatch, meanwhile) -> None:
    """Store "v2 i" over f0.txt..f2.txt, running ``meanwhile`` as the store writes f1.txt's
    object: after its check of the copies, before it writes f1.txt's copy (a race made
    deterministic: what another process does while a store runs)."""
    real = ws.objects.put_bytes

    def put_bytes(content: bytes, *args, **kw):
        if content == b"v2 1":
            meanwhile()
        return real(content, *args, **kw)

    monkeypatch.setattr(ws.objects, "put_bytes", put_bytes)
    ws.artifacts.store_many(sid, [("t", f"f{i}.txt", f"v2 {i}", None) for i in range(3)])
    monkeypatch.undo()


def before_appends(monkeypatch: pytest.MonkeyPatch, ws, before: Callable[[str, bytes], object]):
    """Call ``before(rel, data)`` ahead of every append of ``ws``'s storage, whichever way it is
    written (by path, or through the descriptor an earlier append kept open): a test's full disk
    or kill at a store's commit point. One append is one call, also when the kept descriptor is
    not the file's and the append goes by path after all."""
    storage = ws.storage
    real, known = storage.append, storage.append_known
    asked: list[bytes] = []

    def append_known(rel: str, data: bytes, inode: int, size: int):
        before(rel, data)
        asked[:] = [data]
        return known(rel, data, inode, size)

    def append(rel: str, data: bytes, keep: bool = False) -> int:
        if not (asked and asked[0] is data):
            before(rel, data)
        asked.clear()
        return real(rel, data, keep)

    monkeypatch.setattr(storage, "append_known", append_known)
    monkeypatch.setattr(storage, "append", append)
