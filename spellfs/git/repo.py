"""Sharing a workspace through git (SPEC §6): setup, the merge driver, reconciliation.

What goes into git: ``sessions/``, ``templates/``, ``state.yaml``, ``spell.yaml``,
``.spellignore``, ``.gitignore``, ``.gitattributes`` and ``.spell/objects/``.
Everything else under ``.spell/`` (index, locks, logs, pid) is rebuildable and
stays local.

How two clones merge without conflicts:

- the append-only record files (``artifacts.yaml``, ``checkpoints.yaml``,
  ``runs.yaml``, ``calls.yaml``) are ``merge=union``: both sides' lines are kept;
  :mod:`spellfs.model.artifact_log` orders versions of one name by
  ``(created_at, seq, hash)`` and numbers them 1..n, the same on every clone;
- objects are content-addressed: one path never holds two contents;
- ``files/<name>`` (the plain copy of the latest version) would conflict when
  both sides stored a version of the same name, so it is ``merge=spellfs-files``,
  a merge driver that keeps our side (the command ``true``). The copy is derived
  data: the next ``spell`` command sees HEAD moved and rewrites every copy of a
  session whose records changed from the merged records (:func:`reconcile`).
  The driver lives in ``.git/config``, which a clone does not copy, so
  ``spell init --git``, ``spell commit`` and every ``spell`` command run in a
  workspace whose ``.gitattributes`` names it add it when it is missing. Built-in attributes cannot
  do this: ``binary`` and ``-merge`` keep ours but still declare a conflict; ``union`` blends
  contents.
- what remains a real conflict: both sides editing ``session.yaml``,
  ``state.yaml`` or ``spell.yaml``; and one side deleting an artifact while the
  other stores a new version (a modify/delete conflict on ``files/<name>``).
  ``spell commit`` resolves the second from the records and refuses to commit
  a file that still holds conflict markers.

Objects and ``files/`` copies above ``git.max_object_bytes`` are kept out of git
by ``spell commit`` (:mod:`spellfs.git.commits`; ``spell status`` is
:mod:`spellfs.git.status_report`). So are
the zstd objects of latest versions whose committed ``files/`` copy carries the bytes
(:mod:`spellfs.git.exclude`); reconciling rebuilds them on a clone
(:mod:`spellfs.git.rebuild`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..store import atomic_write
from ..store.links import open_own

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["init_git", "on_open", "reconcile"]

DRIVER = "spellfs-files"
DRIVER_NAME = "spellfs: keep ours; spell rewrites files/ from the merged records"
GITIGNORE = """\
# spellfs: caches, index, locks, logs and the daemon pid stay local; only objects are shared
/.spell/*
!/.spell/objects/
# spellfs: packed objects stay local; `spell commit` writes them loose first
/.spell/objects/pack/
# unfinished writes
.*.tmp
.tmp-*
# spellfs: objects and artifact copies above git.max_object_bytes travel through a remote
# (`spell push` / `spell pull`), not git; `spell commit` appends them below
"""
GITATTRIBUTES = """\
# spellfs: append-only record files merge line by line
sessions/*/artifacts.yaml merge=union
sessions/*/checkpoints.yaml merge=union
sessions/*/runs.yaml merge=union
sessions/*/calls.yaml merge=union
# spellfs: plain copies of the latest versions; spell rewrites them from the merged records
sessions/*/files/** -text merge=spellfs-files
# spellfs: immutable, content-addressed
.spell/objects/** -text -diff
# spellfs: two stored forms of one object (zstd builds differ) hold the same content: keep ours
.spell/objects/** merge=spellfs-files
# spellfs: generated ignore entries only ever grow
/.gitignore merge=union
"""
HEAD_FILE = ".spell/git-head"  # local: the commit at which files/ copies were last reconciled


# -- finding the repository without importing gitpython (every command pays this) ----
def git_dir(root: Path) -> Path | None:
    """The ``.git`` directory of the repository holding ``root``, or None."""
    for d in (root, *root.parents):
        dot = d / ".git"
        if dot.is_dir():
            return dot
        if dot.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = dot.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                return (d / text[7:].strip()).resolve()
    return None


def _common_dir(gd: Path) -> Path:
    common = gd / "commondir"
    return (gd / common.read_text().strip()).resolve() if common.is_file() else gd


def head_commit(gd: Path) -> str | None:
    """HEAD's commit id read from the files, or None on an unborn branch."""
    try:
        head = (gd / "HEAD").read_text().strip()
    except OSError:
        return None
    if not head.startswith("ref: "):
        return head or None
    ref = head[5:]
    for base in (gd, _common_dir(gd)):
        try:
            return (base / ref).read_text().strip() or None
        except OSError:
            pass
    try:
        for line in (_common_dir(gd) / "packed-refs").read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == ref:
                return sha
    except OSError:
        pass
    return None


def driver_configured(gd: Path) -> bool:
    try:
        text = (_common_dir(gd) / "config").read_text(errors="replace")
    except OSError:
        return False
    return f'[merge "{DRIVER}"]' in text


def configure_driver(root: Path) -> None:
    repo = open_repo(root)
    with repo.config_writer("repository") as cw:
        cw.set_value(f'merge "{DRIVER}"', "name", DRIVER_NAME)
        cw.set_value(f'merge "{DRIVER}"', "driver", "true")


def open_repo(root: Path):
    import git

    try:
        return git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UsageError(
            f"not a git repository: {root} (make one with `spell init --git`)"
        ) from None


def ensure_lines(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, or append the lines it lacks to an existing file."""
    try:
        old = path.read_text()
    except FileNotFoundError:
        atomic_write(path, text.encode())
        return
    have = set(old.splitlines())
    missing = [
        line
        for line in text.splitlines()
        if line.strip() and not line.startswith("#") and line not in have
    ]
    if missing:
        sep = "" if not old or old.endswith("\n") else "\n"
        atomic_write(path, (old + sep + "\n".join(missing) + "\n").encode())


def init_git(root: Path) -> None:
    """Make the workspace at ``root`` a git repository (idempotent; reuses an enclosing one)."""
    import git

    root = Path(root).resolve()
    if git_dir(root) is None:
        git.Repo.init(root)
    ensure_lines(root / ".gitignore", GITIGNORE)
    ensure_lines(root / ".gitattributes", GITATTRIBUTES)
    configure_driver(root)


# -- keeping files/ copies equal to the merged records --------------------------
def on_open(ws: "Workspace") -> None:
    """Called by every command: add a missing merge driver; reconcile copies after HEAD moved."""
    # only workspaces set up for git (by `spell init --git` or `spell commit`), not any enclosing
    # repo
    try:
        if f"merge={DRIVER}" not in (ws.root / ".gitattributes").read_text(errors="replace"):
            return
    except OSError:
        return
    gd = git_dir(ws.root)
    if gd is None:
        return
    if not driver_configured(gd):
        configure_driver(ws.root)
    catch_up(ws, gd)


def catch_up(ws: "Workspace", gd: Path, also: set[str] = frozenset()) -> None:
    """Reconcile the sessions HEAD's move since the last time changed, plus ``also``; note HEAD."""
    head = head_commit(gd)
    mark = ws.root / HEAD_FILE
    try:  # (never through a link or a FIFO a clone carried: read at most a line)
        fd = open_own(mark, HEAD_FILE, os.O_RDONLY)
        with open(fd, "rb") as f:
            seen = f.read(256).decode("utf-8", "replace").strip()
    except OSError:
        seen = None
    if seen == head and not also:
        return
    with ws.storage.lock("git"):
        dirs: set[str] | None = set(also)
        if head is not None and seen != head:
            changed = _dirs_changed(ws, seen, head)
            dirs = None if changed is None else dirs | set(changed)
        reconcile(ws, None if dirs is None else sorted(dirs), keep_hand_edits=True)
        if head is not None:
            atomic_write(mark, (head + "\n").encode())


def _dirs_changed(ws: "Workspace", old: str | None, new: str) -> list[str] | None:
    """Session dirs whose files changed between two commits (None: all of them)."""
    if old is None:
        return None
    import git

    repo = open_repo(ws.root)
    prefix = repo_prefix(repo, ws.root)
    try:
        out = repo.git.diff("--name-only", "-z", old, new, "--", prefix or ".")
    except git.GitCommandError:
        return None  # the old commit is gone (rewritten history): check everything
    dirs = set()
    for p in out.split("\0"):
        p = p[len(prefix) :] if p.startswith(prefix) else p
        parts = p.split("/")
        if len(parts) >= 3 and parts[0] == "sessions":
            dirs.add(parts[1])
    return sorted(dirs)


def reconcile(
    ws: "Workspace", dirs: list[str] | None = None, keep_hand_edits: bool = False
) -> list[str]:
    """Make ``files/<name>`` hold the latest live version of each artifact; return the paths
    changed.

    Copies of deleted names are removed; a copy whose object is not local (kept
    out of git, not yet pulled) is left as it is; files that are no artifact's
    copy are not touched. ``keep_hand_edits`` (after a git merge): a copy holding
    content none of its versions has is a hand edit, never clobbered.
    """
    from ..store import hash_bytes

    from ..errors import UnsafePath

    changed: list[str] = []
    for dir in ws.storage.listdir("sessions") if dirs is None else dirs:
        try:  # a session carrying a link is refused by every command, and left alone here
            _reconcile_dir(ws, dir, changed, hash_bytes, keep_hand_edits)
        except UnsafePath:
            continue
    return changed


def _reconcile_dir(
    ws: "Workspace", dir: str, changed: list[str], hash_bytes, keep_hand_edits: bool = False
) -> None:
    """One session's copies, read and written through the storage (which follows no link)."""
    from .rebuild import rebuild_missing

    storage = ws.storage
    if not storage.exists(f"sessions/{dir}/session.yaml"):
        return
    limit = ws.config.get("watch.materialize_max_bytes")
    with storage.lock(f"s-{dir}"):
        log = ws.log(dir)
        log.reset()
        log.refresh()
        # objects git leaves to the files/ copies (spellfs.git.exclude), verified by hash
        rebuild_missing(ws, dir, log)
        for name in list(log.versions):
            rel = f"sessions/{dir}/files/{name}"
            rec = log.latest(name)
            if (
                keep_hand_edits
                and storage.exists(rel)
                and _hand_edited(ws.root / rel, log.versions[name])
            ):
                continue  # content no record holds: a hand edit, never clobbered (save records it)
            if rec is None or rec.get("size", 0) > limit:
                if storage.exists(rel):
                    storage.remove(rel)
                    changed.append(rel)
                continue
            try:
                sig = storage.signature(rel)
                if (
                    sig is not None
                    and sig[1] == rec.get("size")
                    and hash_bytes(storage.read(rel)) == rec["hash"]
                ):
                    continue
            except OSError:
                pass
            if not ws.objects.has(rec["hash"]):
                continue
            storage.write(rel, ws.objects.get(rec["hash"]))
            changed.append(rel)


def _hand_edited(path: Path, versions: list[dict]) -> bool:
    """True when ``path`` holds content none of its artifact's versions has (a derived copy
    from either side of a merge always matches one of them)."""
    from ..model import hash_path

    try:
        got = hash_path(str(path))
    except OSError:
        return False
    if got is None:
        return True  # being written right now: not ours to replace
    return all(v.get("hash") != got[0] for v in versions)


# -- git plumbing shared with commit and status --------------------------------------
def repo_prefix(repo, root: Path) -> str:
    rel = os.path.relpath(Path(root).resolve(), Path(repo.working_tree_dir).resolve())
    return "" if rel == "." else rel.replace(os.sep, "/") + "/"
