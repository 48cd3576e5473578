"""Sharing a workspace through git (SPEC §6): setup, reconciliation, commit, status.

What goes into git: ``sessions/``, ``templates/``, ``state.yaml``, ``spell.yaml``,
``.spellignore``, ``.gitignore``, ``.gitattributes`` and ``.spell/objects/``.
Everything else under ``.spell/`` (index, locks, logs, pid) is rebuildable and
stays local.

How two clones merge without conflicts:

- the append-only record files (``artifacts.yaml``, ``checkpoints.yaml``,
  ``runs.yaml``, ``calls.yaml``) are ``merge=union``: both sides' lines are kept;
  :mod:`spellfs.artifact_log` orders versions of one name by
  ``(created_at, seq, hash)`` and numbers them 1..n, the same on every clone;
- objects are content-addressed: one path never holds two contents;
- ``files/<name>`` (the plain copy of the latest version) would conflict when
  both sides stored a version of the same name, so it is ``merge=spellfs-files``,
  a merge driver that keeps our side (the command ``true``). The copy is derived
  data: the next ``spell`` command sees HEAD moved and rewrites every copy of a
  session whose records changed from the merged records (:func:`reconcile`).
  The driver lives in ``.git/config``, which a clone does not copy, so
  ``spell init --git``, ``spell commit`` and every ``spell`` command run in a
  workspace whose ``.gitattributes`` names it add it when it is missing. Built-in attributes cannot do this: ``binary`` and ``-merge`` keep
  ours but still declare a conflict; ``union`` blends contents.
- what remains a real conflict: both sides editing ``session.yaml``,
  ``state.yaml`` or ``spell.yaml``; and one side deleting an artifact while the
  other stores a new version (a modify/delete conflict on ``files/<name>``).
  ``spell commit`` resolves the second from the records and refuses to commit
  a file that still holds conflict markers.

Objects and ``files/`` copies above ``git.max_object_bytes`` are kept out of git:
``spell commit`` appends their paths to the workspace ``.gitignore`` (union-merged,
only ever growing) and they travel through a remote (``spell push`` /
``spell pull``; a read of a missing object fetches it from the default remote).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SpellError, UsageError
from .storage import atomic_write

if TYPE_CHECKING:
    from .workspace import Workspace

__all__ = ["CommitResult", "commit", "init_git", "on_open", "reconcile", "status"]

DRIVER = "spellfs-files"
DRIVER_NAME = "spellfs: keep ours; spell rewrites files/ from the merged records"
GITIGNORE = """\
# spellfs: caches, index, locks, logs and the daemon pid stay local; only objects are shared
/.spell/*
!/.spell/objects/
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
# spellfs: generated ignore entries only ever grow
/.gitignore merge=union
"""
#: Workspace paths `spell commit` stages (relative to the workspace root).
SHARED = ("sessions", "templates", "state.yaml", "spell.yaml", ".spellignore", ".gitignore", ".gitattributes",
          ".spell/objects", ".spell/.gitignore")
HEAD_FILE = ".spell/git-head"  # local: the commit at which files/ copies were last reconciled
RECORD_FILES = ("artifacts.yaml", "checkpoints.yaml", "runs.yaml", "calls.yaml")
_CONFLICT = re.compile(rb"^(<<<<<<<|>>>>>>>) ", re.M)


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
        raise UsageError(f"not a git repository: {root} (make one with `spell init --git`)") from None


def _ensure_lines(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, or append the lines it lacks to an existing file."""
    try:
        old = path.read_text()
    except FileNotFoundError:
        atomic_write(path, text.encode())
        return
    have = set(old.splitlines())
    missing = [line for line in text.splitlines() if line.strip() and not line.startswith("#") and line not in have]
    if missing:
        sep = "" if not old or old.endswith("\n") else "\n"
        atomic_write(path, (old + sep + "\n".join(missing) + "\n").encode())


def init_git(root: Path) -> None:
    """Make the workspace at ``root`` a git repository (idempotent; reuses an enclosing one)."""
    import git

    root = Path(root).resolve()
    if git_dir(root) is None:
        git.Repo.init(root)
    _ensure_lines(root / ".gitignore", GITIGNORE)
    _ensure_lines(root / ".gitattributes", GITATTRIBUTES)
    configure_driver(root)


# -- keeping files/ copies equal to the merged records --------------------------
def on_open(ws: "Workspace") -> None:
    """Called by every command: add a missing merge driver; reconcile copies after HEAD moved."""
    try:  # only workspaces set up for git (by `spell init --git` or `spell commit`), not any enclosing repo
        if f"merge={DRIVER}" not in (ws.root / ".gitattributes").read_text(errors="replace"):
            return
    except OSError:
        return
    gd = git_dir(ws.root)
    if gd is None:
        return
    if not driver_configured(gd):
        configure_driver(ws.root)
    _catch_up(ws, gd)


def _catch_up(ws: "Workspace", gd: Path, also: set[str] = frozenset()) -> None:
    """Reconcile the sessions HEAD's move since the last time changed, plus ``also``; note HEAD."""
    head = head_commit(gd)
    mark = ws.root / HEAD_FILE
    try:
        seen = mark.read_text().strip()
    except OSError:
        seen = None
    if seen == head and not also:
        return
    with ws.storage.lock("git"):
        dirs: set[str] | None = set(also)
        if head is not None and seen != head:
            changed = _dirs_changed(ws, seen, head)
            dirs = None if changed is None else dirs | set(changed)
        reconcile(ws, None if dirs is None else sorted(dirs))
        if head is not None:
            atomic_write(mark, (head + "\n").encode())


def _dirs_changed(ws: "Workspace", old: str | None, new: str) -> list[str] | None:
    """Session dirs whose files changed between two commits (None: all of them)."""
    if old is None:
        return None
    import git

    repo = open_repo(ws.root)
    prefix = _prefix(repo, ws.root)
    try:
        out = repo.git.diff("--name-only", "-z", old, new, "--", prefix or ".")
    except git.GitCommandError:
        return None  # the old commit is gone (rewritten history): check everything
    dirs = set()
    for p in out.split("\0"):
        p = p[len(prefix):] if p.startswith(prefix) else p
        parts = p.split("/")
        if len(parts) >= 3 and parts[0] == "sessions":
            dirs.add(parts[1])
    return sorted(dirs)


def reconcile(ws: "Workspace", dirs: list[str] | None = None) -> list[str]:
    """Make ``files/<name>`` hold the latest live version of each artifact; return the paths changed.

    Copies of deleted names are removed; a copy whose object is not local (kept
    out of git, not yet pulled) is left as it is; files that are no artifact's
    copy are not touched.
    """
    from .objects import hash_bytes

    changed = []
    limit = ws.config.get("watch.materialize_max_bytes")
    for dir in (ws.storage.listdir("sessions") if dirs is None else dirs):
        if not ws.storage.exists(f"sessions/{dir}/session.yaml"):
            continue
        with ws.storage.lock(f"s-{dir}"):
            log = ws.log(dir)
            log.reset()
            log.refresh()
            for name in list(log.versions):
                rel = f"sessions/{dir}/files/{name}"
                rec = log.latest(name)
                path = ws.root / rel
                if rec is None or rec.get("size", 0) > limit:
                    if path.exists():
                        ws.storage.remove(rel)
                        changed.append(rel)
                    continue
                try:
                    st = path.stat()
                    if st.st_size == rec.get("size") and hash_bytes(path.read_bytes()) == rec["hash"]:
                        continue
                except OSError:
                    pass
                if not ws.objects.has(rec["hash"]):
                    continue
                ws.storage.write(rel, ws.objects.get(rec["hash"]))
                changed.append(rel)
    return changed


# -- git plumbing shared by commit and status -------------------------------------
def _prefix(repo, root: Path) -> str:
    rel = os.path.relpath(Path(root).resolve(), Path(repo.working_tree_dir).resolve())
    return "" if rel == "." else rel.replace(os.sep, "/") + "/"


def _porcelain(repo, prefix: str) -> list[tuple[str, str]]:
    """(XY, workspace-relative path) for every changed or untracked path under the workspace."""
    out = repo.git.status("--porcelain=v1", "-z", "--untracked-files=all", "--", prefix or ".")
    items, parts = [], out.split("\0")
    i = 0
    while i < len(parts):
        entry = parts[i]
        i += 1
        if len(entry) < 4:
            continue
        xy, path = entry[:2], entry[3:]
        if xy[0] in "RC":
            i += 1  # the source path follows
        if path.startswith(prefix):
            items.append((xy, path[len(prefix):]))
    return items


def _shared(path: str) -> bool:
    return any(path == s or path.startswith(s + "/") for s in SHARED)


def _git_error(what: str, exc: Exception) -> SpellError:
    detail = (getattr(exc, "stderr", "") or str(exc)).strip().replace("\n", " ")
    detail = re.sub(r"^stderr:\s*", "", detail).strip("' ")
    return SpellError(f"git {what} failed: {detail[:400]}")


# -- commit ---------------------------------------------------------------------
@dataclass
class CommitResult:
    committed: bool
    sha: str | None = None
    message: str = ""
    sessions: dict[str, dict[str, int]] = field(default_factory=dict)
    kept_out: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"committed": self.committed, "commit": self.sha, "message": self.message,
                "sessions": self.sessions, "kept_out": self.kept_out, "resolved": self.resolved}


def _escape_ignore(path: str) -> str:
    out = re.sub(r"([\\*?\[])", r"\\\1", path)
    if out.endswith(" "):
        out = out[:-1] + "\\ "
    return "/" + out


def _keep_out_large(ws: "Workspace", repo, prefix: str, items: list[tuple[str, str]]) -> list[str]:
    """Ignore new or changed objects and copies above git.max_object_bytes; return their paths."""
    limit = ws.config.get("git.max_object_bytes")
    large = []
    for xy, path in items:
        parts = path.split("/")
        if not (path.startswith(".spell/objects/") or (len(parts) == 4 and parts[0] == "sessions" and parts[2] == "files")):
            continue
        try:
            if os.lstat(ws.root / path).st_size > limit:
                large.append(path)
        except OSError:
            continue
    if not large:
        return []
    ignore = ws.root / ".gitignore"
    try:
        old = ignore.read_text()
    except FileNotFoundError:
        old = GITIGNORE
    have = set(old.splitlines())
    new = [p for p in (_escape_ignore(p) for p in large) if p not in have]
    if new:
        sep = "" if old.endswith("\n") else "\n"
        atomic_write(ignore, (old + sep + "\n".join(new) + "\n").encode())
    tracked = [p for xy, p in items if p in set(large) and xy[0] != "?" and xy != "??"]
    if tracked:
        repo.git.rm("--cached", "-q", "--", *(prefix + p for p in tracked))
    return large


def _summary(repo, prefix: str) -> tuple[dict[str, dict[str, int]], list[str], int]:
    """Per session: what the staged change adds; other workspace paths; objects added."""
    sessions: dict[str, dict[str, int]] = {}
    other, objects = [], 0
    names = repo.git.diff("--cached", "--name-status", "-z", "--no-renames", "--", prefix or ".").split("\0")
    record_files = []
    for status_, path in zip(names[0::2], names[1::2]):
        path = path[len(prefix):] if path.startswith(prefix) else path
        parts = path.split("/")
        if path.startswith(".spell/objects/"):
            objects += status_ == "A"
        elif parts[0] == "sessions" and len(parts) >= 3:
            s = sessions.setdefault(parts[1], {})
            if parts[2] == "session.yaml":
                key = {"A": "new session", "D": "removed"}.get(status_, "manifest changed")
                s[key] = 1
            elif parts[2] in RECORD_FILES:
                record_files.append(prefix + path)
            elif parts[2] == "state.yaml":
                s["state changed"] = 1
            elif parts[2] == "files":
                s["_files"] = s.get("_files", 0) + 1
        elif _shared(path):
            other.append(path)
    if record_files:
        diff = repo.git.diff("--cached", "-U0", "--no-color", "--no-ext-diff", "--", *record_files)
        current = None
        for line in diff.splitlines():
            if line.startswith("+++ "):
                p = line[4:]
                p = p[2:] if p.startswith("b/") else p
                p = p[len(prefix):] if p.startswith(prefix) else p
                current = p.split("/") if p != "/dev/null" else None
            elif line.startswith("+- ") and current and len(current) >= 3:
                s = sessions.setdefault(current[1], {})
                kind = {"artifacts.yaml": "stored", "checkpoints.yaml": "checkpoints", "runs.yaml": "runs",
                        "calls.yaml": "model calls"}[current[2]]
                if kind == "stored" and '"op": "delete"' in line:
                    kind = "deleted"
                s[kind] = s.get(kind, 0) + 1
    for s in sessions.values():
        files = s.pop("_files", 0)
        if files and not s.get("stored") and not s.get("deleted"):
            s["files changed"] = files
    return sessions, other, objects


def _describe(counts: dict[str, int]) -> str:
    words = []
    for key in ("new session", "removed", "manifest changed", "state changed"):
        if counts.get(key):
            words.append(key)
    plural = {"stored": ("artifact version stored", "artifact versions stored"),
              "deleted": ("artifact deleted", "artifacts deleted"),
              "checkpoints": ("checkpoint", "checkpoints"), "runs": ("run", "runs"),
              "model calls": ("model call", "model calls"), "files changed": ("file changed", "files changed")}
    for key, (one, many) in plural.items():
        n = counts.get(key, 0)
        if n:
            words.append(f"{n} {one if n == 1 else many}")
    return ", ".join(words) or "changed"


def _merging(repo) -> bool:
    return os.path.exists(os.path.join(repo.git_dir, "MERGE_HEAD"))


def commit(ws: "Workspace", message: str | None = None) -> CommitResult:
    """Stage the workspace's shared paths and commit them, resolving what spell can resolve."""
    import git

    repo = open_repo(ws.root)
    _ensure_lines(ws.root / ".gitignore", GITIGNORE)
    _ensure_lines(ws.root / ".gitattributes", GITATTRIBUTES)
    if not driver_configured(Path(repo.git_dir)):
        configure_driver(ws.root)
    prefix = _prefix(repo, ws.root)
    result = CommitResult(False)
    try:
        # files/ copies are derived: a conflicted or stale one is rewritten from the records.
        unmerged = {e.split("\t", 1)[1][len(prefix):] for e in repo.git.ls_files("-u", "-z", "--", prefix or ".").split("\0")
                    if "\t" in e}
        _catch_up(ws, Path(repo.git_dir), {p.split("/")[1] for p in unmerged
                                           if p.startswith("sessions/") and p.count("/") >= 2})
        for p in sorted(unmerged):
            parts = p.split("/")
            if len(parts) == 4 and parts[0] == "sessions" and parts[2] == "files":
                result.resolved.append(p)
            elif os.path.exists(ws.root / p) and _CONFLICT.search((ws.root / p).read_bytes()):
                raise SpellError(f"merge conflict: {p} still has conflict markers "
                                 "(edit it to keep what you want, then run `spell commit` again)")
            elif not _shared(p):
                raise SpellError(f"merge conflict: {p} (resolve it with git, then run `spell commit` again)")
        items = _porcelain(repo, prefix)
        result.kept_out = _keep_out_large(ws, repo, prefix, [(xy, p) for xy, p in items if _shared(p)])
        tracked = set(repo.git.ls_files("-z", "--", *(prefix + s for s in SHARED)).split("\0"))
        specs = [prefix + s for s in SHARED
                 if (ws.root / s).exists() or any(t == prefix + s or t.startswith(prefix + s + "/") for t in tracked)]
        if specs:
            repo.git.add("-A", "--", *specs)
        sessions, other, objects = _summary(repo, prefix)
        merging = _merging(repo)
        if not sessions and not other and not objects and not merging:
            return result
        result.sessions = sessions
        n = len(sessions)
        subject = (f"spell: {n} session{'s' if n != 1 else ''} changed" if n
                   else "spell: workspace changed" if other or objects else "spell: merge")
        body = [f"- {d}: {_describe(c)}" for d, c in sorted(sessions.items())]
        if other:
            body.append(f"- workspace: {', '.join(sorted(other)[:10])}" + (" …" if len(other) > 10 else ""))
        if objects:
            body.append(f"- {objects} object{'s' if objects != 1 else ''} added")
        if result.resolved:
            body.append(f"- {len(result.resolved)} files/ copies resolved from the merged records")
        if message:
            subject, body = message, [subject, ""] + body
        result.message = subject + "\n\n" + "\n".join(body) + "\n"
        if merging:
            repo.git.commit("-q", "-m", result.message)
        else:
            changed = set(repo.git.diff("--cached", "--name-only", "-z", "--", *specs).split("\0")) - {""}
            only = [s for s in specs if any(c == s or c.startswith(s + "/") for c in changed)]
            repo.git.commit("-q", "-m", result.message, "--", *only)
        result.committed = True
        result.sha = repo.head.commit.hexsha
        atomic_write(ws.root / HEAD_FILE, (result.sha + "\n").encode())
    except git.GitCommandError as exc:
        raise _git_error(exc.command[1] if len(exc.command) > 1 else "command", exc) from None
    return result


# -- status -----------------------------------------------------------------------
def status(ws: "Workspace") -> dict[str, Any]:
    """Per session: its last checkpoint and what changed since; what is not committed."""
    history = _history(ws)
    gd = git_dir(ws.root)
    out: dict[str, Any] = {"git": gd is not None, "branch": None, "merging": False, "sessions": [],
                           "workspace": []}
    uncommitted: dict[str, list[str]] = {}
    if gd is not None:
        import git

        repo = open_repo(ws.root)
        prefix = _prefix(repo, ws.root)
        try:
            out["branch"] = None if repo.head.is_detached else repo.active_branch.name
            items = _porcelain(repo, prefix)
        except git.GitCommandError as exc:
            raise _git_error("status", exc) from None
        out["merging"] = _merging(repo)
        objects = 0
        for xy, path in items:
            parts = path.split("/")
            if parts[0] == "sessions" and len(parts) >= 3:
                uncommitted.setdefault(parts[1], []).append("/".join(parts[2:]))
            elif path.startswith(".spell/objects/"):
                objects += 1
            elif _shared(path):
                out["workspace"].append(path)
        out["objects"] = objects
    dirs = sorted(set(d for d in ws.storage.listdir("sessions") if ws.storage.exists(f"sessions/{d}/session.yaml"))
                  | set(uncommitted))
    for dir in dirs:
        entry: dict[str, Any] = {"path": f"sessions/{dir}", "id": None, "name": None,
                                 "checkpoint": None, "since_checkpoint": None}
        try:
            m = ws.sessions.manifest(dir)
            entry["id"], entry["name"] = m["id"], m["name"]
        except SpellError as exc:
            entry["error"] = str(exc)
        if history is not None and entry["id"]:
            entry["checkpoint"], entry["since_checkpoint"] = _since_checkpoint(history, dir)
        if gd is not None:
            entry["uncommitted"] = sorted(uncommitted.get(dir, []))
        out["sessions"].append(entry)
    return out


def _history(ws: "Workspace") -> Any:
    try:
        import spellfs.history  # noqa: F401
    except ImportError:
        return None
    return getattr(ws, "history", None)


def _since_checkpoint(history: Any, dir: str) -> tuple[Any, Any]:
    """The last checkpoint record and a compact summary of what changed since it."""
    checkpoints = history.checkpoints(dir)
    if not checkpoints:
        return None, None
    last = checkpoints[-1]
    d = history.diff(dir, last["number"])
    arts = d.get("artifacts", {})
    return last, {
        "added": [a["name"] for a in arts.get("added", ())],
        "removed": [a["name"] for a in arts.get("removed", ())],
        "changed": [a["name"] for a in arts.get("changed", ())],
        "manifest": sorted(d.get("manifest") or {}) + (["tags"] if any((d.get("tags") or {}).values()) else [])
        + (["metadata"] if any((d.get("metadata") or {}).values()) else []),
        "state": sorted(k for part in (d.get("state") or {}).values() for k in part),
    }
