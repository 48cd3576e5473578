"""No link under ``sessions/`` is followed: PathGuard's checks, in-process, on a real folder."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from spellfs.errors import UnsafePath
from spellfs.store.links import PathGuard, refusal
from spellfs.store.storage import FsStorage

HINT = "spellfs never follows links under sessions/; remove it, or the session"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A workspace-like folder with one real session and a place outside it to point at."""
    root = tmp_path / "ws"
    (root / "sessions" / "s" / "files").mkdir(parents=True)
    (root / "sessions" / "s" / "artifacts.yaml").write_text("")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("secret")
    return root


def guard(root: Path) -> PathGuard:
    return PathGuard(os.fspath(root) + "/")


def test_refusal_names_the_path_and_what_it_is() -> None:
    assert str(refusal("sessions/s/files", stat.S_IFLNK | 0o777)) == (
        f"refused: sessions/s/files is a symbolic link ({HINT})"
    )
    assert str(refusal("sessions/s/x", stat.S_IFIFO | 0o644)) == (
        f"refused: sessions/s/x is a special file (device, fifo or socket) ({HINT})"
    )


def test_plain_session_paths_pass(tree: Path) -> None:
    g = guard(tree)
    g.check("sessions/s/artifacts.yaml")
    g.check("sessions/s/files/new.txt")  # not there yet: nothing to follow
    g.check("sessions/s/files", final=True)


def test_a_linked_folder_on_the_way_is_refused_by_name(tree: Path) -> None:
    shutil.rmtree(tree / "sessions" / "s" / "files")
    os.symlink("../../../outside", tree / "sessions" / "s" / "files")
    with pytest.raises(UnsafePath) as err:
        guard(tree).check("sessions/s/files/secret.txt", final=False)
    assert str(err.value) == f"refused: sessions/s/files is a symbolic link ({HINT})"


def test_sessions_itself_a_link_is_refused(tree: Path) -> None:
    shutil.rmtree(tree / "sessions")
    os.symlink("../outside", tree / "sessions")
    with pytest.raises(UnsafePath, match=r"^refused: sessions is a symbolic link"):
        guard(tree).check("sessions/s/artifacts.yaml", final=False)


def test_the_last_part_is_checked_only_when_final(tree: Path) -> None:
    log = tree / "sessions" / "s" / "artifacts.yaml"
    log.unlink()
    os.symlink("../../../outside/secret.txt", log)
    guard(tree).check("sessions/s/artifacts.yaml", final=False)  # the open refuses it itself
    with pytest.raises(UnsafePath) as err:
        guard(tree).check("sessions/s/artifacts.yaml")
    assert str(err.value) == f"refused: sessions/s/artifacts.yaml is a symbolic link ({HINT})"


def test_a_fifo_is_refused_as_a_special_file(tree: Path) -> None:
    os.mkfifo(tree / "sessions" / "s" / "events.yaml")
    with pytest.raises(UnsafePath) as err:
        guard(tree).check("sessions/s/events.yaml")
    assert str(err.value) == (
        f"refused: sessions/s/events.yaml is a special file (device, fifo or socket) ({HINT})"
    )


def test_links_outside_sessions_are_not_checked(tree: Path) -> None:
    (tree / "templates").symlink_to(tree.parent / "outside")
    guard(tree).check("templates/secret.txt")
    guard(tree).check("templates")


def test_a_plain_file_on_the_way_stops_the_check(tree: Path) -> None:
    """``sessions/s/artifacts.yaml/x``: the open fails with ENOTDIR, nothing is followed, and a
    link further down cannot exist."""
    guard(tree).check("sessions/s/artifacts.yaml/x/y")


def test_a_missing_folder_stops_the_check(tree: Path) -> None:
    guard(tree).check("sessions/t/files/a.txt")


def test_a_folder_seen_real_is_not_looked_at_again_until_forgotten(tree: Path) -> None:
    """The cache is what makes the check cheap; ``forget`` is what keeps it right when a
    session is removed and a link put in its place."""
    g = guard(tree)
    g.check("sessions/s/files/a.txt")
    shutil.rmtree(tree / "sessions" / "s")
    os.symlink("../../outside", tree / "sessions" / "s")
    g.check("sessions/s/files/a.txt")  # cached as a real folder: not looked at again
    g.forget("sessions/s")
    with pytest.raises(UnsafePath, match=r"^refused: sessions/s is a symbolic link"):
        g.check("sessions/s/files/a.txt")


def test_forget_drops_what_is_under_the_folder_too(tree: Path) -> None:
    g = guard(tree)
    g.check("sessions/s/files/a.txt")
    shutil.rmtree(tree / "sessions" / "s" / "files")
    os.symlink("../../../outside", tree / "sessions" / "s" / "files")
    g.forget("sessions/s")
    with pytest.raises(UnsafePath, match=r"^refused: sessions/s/files is a symbolic link"):
        g.check("sessions/s/files/secret.txt")


def test_storage_reads_through_a_linked_session_folder_are_refused(tree: Path) -> None:
    storage = FsStorage(tree)
    assert storage.read("sessions/s/artifacts.yaml") == b""
    shutil.rmtree(tree / "sessions" / "s" / "files")
    os.symlink("../../../outside", tree / "sessions" / "s" / "files")
    with pytest.raises(UnsafePath, match=r"^refused: sessions/s/files is a symbolic link"):
        storage.read("sessions/s/files/secret.txt")


# -- the object store's folders (red-team F22: a cloned repository's links under .spell/) --

OBJECTS_HINT = "spellfs never follows links under .spell/; remove it: `spell fsck` lists them"


def _outside_files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "outside").iterdir())


def test_a_store_never_writes_through_a_linked_fan_out_folder(ws, tmp_path: Path) -> None:
    from spellfs.store import PACKED_MAX, hash_bytes

    data = b"my private notes" + os.urandom(PACKED_MAX)  # a loose file (a small one: a journal)
    fan = hash_bytes(data)[:2]
    (tmp_path / "outside").mkdir()
    (ws.root / ".spell" / "objects" / fan).symlink_to(tmp_path / "outside")
    sid = ws.sessions.create(name="s")
    with pytest.raises(UnsafePath) as err:
        ws.artifacts.store(sid, "user_input", "notes.txt", data)
    assert str(err.value) == (f"refused: .spell/objects/{fan} is a symbolic link ({OBJECTS_HINT})")
    assert _outside_files(tmp_path) == []
    assert ws.artifacts.list(sid) == []


def test_a_linked_objects_folder_or_pack_folder_is_refused(ws, tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    sid = ws.sessions.create(name="s")
    pack = ws.root / ".spell" / "objects" / "pack"
    pack.symlink_to(tmp_path / "outside")
    with pytest.raises(UnsafePath, match=r"^refused: \.spell/objects/pack is a symbolic link"):
        ws.artifacts.store_many(sid, [("t", f"a{i}.txt", f"n {i}", None) for i in range(20)])
    pack.unlink()
    objects = ws.root / ".spell" / "objects"
    shutil.rmtree(objects)
    objects.symlink_to(tmp_path / "outside")
    from spellfs.store import FsObjectStore

    store = FsObjectStore(objects, 1024)
    with pytest.raises(UnsafePath, match=r"^refused: \.spell/objects is a symbolic link"):
        store.put_bytes(b"x")
    with pytest.raises(UnsafePath, match=r"^refused: \.spell/objects is a symbolic link"):
        list(store)
    with pytest.raises(UnsafePath, match=r"^refused: \.spell/objects is a symbolic link"):
        store.put_many([f"n {i}".encode() for i in range(20)])  # (a pack, not loose files)
    assert _outside_files(tmp_path) == []


def test_gc_and_removal_never_touch_files_behind_a_linked_fan_out(ws, tmp_path: Path) -> None:
    from spellfs.store import FsObjectStore

    outside = tmp_path / "outside"
    outside.mkdir()
    victim = "ab" + "0" * 62
    (outside / victim[2:]).write_text("someone else's file")
    (ws.root / ".spell" / "objects" / "ab").symlink_to(outside)
    store = FsObjectStore(ws.root / ".spell" / "objects", 1024)
    assert list(store) == []  # not listed, so gc never considers it
    with pytest.raises(UnsafePath):
        store.remove(victim)
    assert (outside / victim[2:]).read_text() == "someone else's file"
    from spellfs.maintenance.checks import fsck

    report = fsck(ws)
    assert [(p.kind, p.where) for p in report.problems] == [("unsafe-link", ".spell/objects/ab")]


def test_a_cloned_repository_with_linked_object_folders_cannot_take_a_users_content(
    tmp_path: Path,
) -> None:
    """The red-team repro: 256 linked fan-out folders committed to git, cloned, `spell add`."""
    import subprocess

    from conftest import run_spell

    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    evil, exfil, victim = tmp_path / "evil", tmp_path / "exfil", tmp_path / "victim"
    exfil.mkdir()
    assert run_spell("init", "--git", str(evil)).returncode == 0
    assert run_spell("-w", str(evil), "new", "shared").returncode == 0
    assert run_spell("-w", str(evil), "commit", "-m", "init", env=env).returncode == 0
    for i in range(256):
        fan = evil / ".spell" / "objects" / f"{i:02x}"
        shutil.rmtree(fan, ignore_errors=True)
        fan.symlink_to(exfil)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "-C", str(evil), "add", "-f", ".spell/objects"], check=True)
    subprocess.run([*git, "-C", str(evil), "commit", "-qm", "objects"], check=True)
    subprocess.run(["git", "clone", "-q", str(evil), str(victim)], check=True)
    from spellfs.store import PACKED_MAX

    # big enough to be a loose file in a fan-out folder (a small one goes to the journal)
    (tmp_path / "notes.txt").write_bytes(
        b"my private notes: password=hunter2\n" + os.urandom(PACKED_MAX)
    )
    out = run_spell("-w", str(victim), "add", "shared", str(tmp_path / "notes.txt"))
    err = out.stderr.decode()
    assert out.returncode != 0 and len(err.strip().splitlines()) == 1, err
    assert "is a symbolic link" in err and "Traceback" not in err
    assert list(exfil.iterdir()) == []
    fsck = run_spell("-w", str(victim), "fsck")
    assert fsck.returncode != 0
    assert fsck.stdout.decode().count("unsafe-link") == 256


def test_a_linked_spell_folder_is_refused_by_name(tmp_path: Path) -> None:
    from spellfs.store import FsObjectStore

    (tmp_path / "outside" / "objects").mkdir(parents=True)
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / ".spell").symlink_to(tmp_path / "outside")
    store = FsObjectStore(tmp_path / "ws" / ".spell" / "objects", 1024)
    with pytest.raises(UnsafePath, match=r"^refused: \.spell is a symbolic link"):
        store.put_bytes(b"x")
    assert list((tmp_path / "outside" / "objects").iterdir()) == []


class _GuardAsBefore(PathGuard):
    """The check as it was before a folder seen whole was let through at once: every folder on
    the way looked up in turn (the oracle for the short cut)."""

    def check(self, rel: str, final: bool = True) -> None:
        if not rel.startswith("sessions"):
            return
        parts = rel.split("/")
        last = len(parts) if final else len(parts) - 1
        for i in range(1, last + 1):
            sub = "/".join(parts[:i])
            if sub in self._dirs:
                continue
            try:
                mode = os.lstat(self.base + sub).st_mode
            except (FileNotFoundError, NotADirectoryError):
                return
            if stat.S_ISDIR(mode):
                self._dirs.add(sub)
            elif not stat.S_ISREG(mode):
                raise refusal(sub, mode)
            else:
                return


_PATHS = [
    "sessions/s/files/a.txt",
    "sessions/s/files",
    "sessions/s/artifacts.yaml",
    "sessions/s//files/a.txt",
    "sessions/t/files/b.txt",
    "sessions/s/files/d/e.txt",
    "sessions/s/files/d",
]
_FOLDERS = ["sessions/s", "sessions/s/files", "sessions/t", "sessions/s/files/d"]


@pytest.mark.parametrize("seed", range(40))
def test_the_short_cut_for_a_folder_seen_whole_answers_as_the_full_check(
    tmp_path: Path, seed: int
) -> None:
    """Checks, forgets and folders swapped for links (or made again) in a random order: the
    guard that lets a folder seen whole through at once refuses exactly what the one that looks
    at every folder on the way refuses, and remembers the same folders."""
    import random

    rng = random.Random(seed)
    root = tmp_path / "ws"
    for d in ("sessions/s/files/d", "sessions/t/files"):
        (root / d).mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    new, old = guard(root), _GuardAsBefore(os.fspath(root) + "/")
    for _ in range(60):
        op = rng.random()
        if op < 0.6:
            rel, final = rng.choice(_PATHS), rng.random() < 0.5
            answers = []
            for g in (new, old):
                try:
                    g.check(rel, final)
                    answers.append("ok")
                except UnsafePath as exc:
                    answers.append(str(exc))
            assert answers[0] == answers[1], (rel, final)
        elif op < 0.8:
            folder = rng.choice(_FOLDERS)
            new.forget(folder)
            old.forget(folder)
        else:  # swap a folder for a link to outside, or put a real one back
            folder = root / rng.choice(_FOLDERS)
            if folder.is_symlink():
                folder.unlink()
                folder.mkdir()
            elif folder.is_dir():
                shutil.rmtree(folder)
                os.symlink(tmp_path / "outside", folder)
        assert new._dirs == old._dirs


def test_a_link_deeper_under_dot_spell_is_never_written_through(tmp_path: Path) -> None:
    """red-team 7: `.spell/agent_cache/ab` a link to a folder elsewhere (one level below the
    folders checked by name): a write there is refused, nothing lands outside."""
    from spellfs import UnsafePath
    from spellfs.store import FsStorage

    root = tmp_path / "ws"
    (root / ".spell" / "agent_cache").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / ".spell" / "agent_cache" / "ab").symlink_to(outside)
    fs = FsStorage(root)
    with pytest.raises(UnsafePath, match="refused: .spell/agent_cache/ab is a symbolic link"):
        fs.write(".spell/agent_cache/ab/" + "0" * 62, b"x")
    assert list(outside.iterdir()) == []
    fs.write(".spell/agent_cache/cd/" + "0" * 62, b"y")  # (a real folder: written)
