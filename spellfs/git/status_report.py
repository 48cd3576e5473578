"""`spell status`: per session, its last checkpoint and what changed since (hand edits
included, seen without the watcher), and what git has not committed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import SpellError
from ..history import ref_of
from ..model import not_files
from . import exclude as carry
from .plumbing import git_error, is_merging, porcelain, shared
from .repo import git_dir, open_repo, repo_prefix

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["status"]


def status(ws: "Workspace") -> dict[str, Any]:
    """Per session: its last checkpoint and what changed since; what is not committed."""
    history = ws.history
    gd = git_dir(ws.root)
    out: dict[str, Any] = {
        "git": gd is not None,
        "branch": None,
        "merging": False,
        "sessions": [],
        "workspace": [],
    }
    uncommitted: dict[str, list[str]] = {}
    if gd is not None:
        import git

        repo = open_repo(ws.root)
        prefix = repo_prefix(repo, ws.root)
        try:
            out["branch"] = None if repo.head.is_detached else repo.active_branch.name
            items = porcelain(repo, prefix)
        except git.GitCommandError as exc:
            raise git_error("status", exc) from None
        out["merging"] = is_merging(repo)
        objects = 0
        for _xy, path in items:
            parts = path.split("/")
            if parts[0] == "sessions" and len(parts) >= 3:
                uncommitted.setdefault(parts[1], []).append("/".join(parts[2:]))
            elif path.startswith(".spell/objects/"):
                objects += 1
            elif shared(path):
                out["workspace"].append(path)
        # packs are git-ignored: their objects count as git would see them once written loose
        # (what `spell commit` does first), less those a committed files/ copy carries
        packed = set(ws.objects.packed_only()) - carry.entries(carry.objects_dir(ws))
        out["objects"] = objects + len(packed)
    dirs = sorted(
        set(
            d
            for d in ws.storage.listdir("sessions")
            if ws.storage.exists(f"sessions/{d}/session.yaml")
        )
        | set(uncommitted)
    )
    for dir in dirs:
        entry: dict[str, Any] = {
            "path": f"sessions/{dir}",
            "id": None,
            "name": None,
            "checkpoint": None,
            "since_checkpoint": None,
        }
        try:
            m = ws.sessions.manifest(dir)
            entry["id"], entry["name"] = m["id"], m["name"]
            # hand edits, seen without the watcher; one session's link or broken record is
            # said on its own line, the others still shown
            entry["unrecorded"] = ws.worktree.scan(dir).as_dict()
            log = ws.log(dir)
            entry["not_files"] = [
                {**n, "recorded": log.is_live(n["name"])}
                for n in (not_files(f"{ws.root}/sessions/{dir}/files") if ws.root else ())
            ]
            checkpoints = history.checkpoints(dir)
            entry["checkpoint"] = checkpoints[-1] if checkpoints else None
            entry["since_checkpoint"] = _since_checkpoint(history, dir, entry["checkpoint"])
        except SpellError as exc:
            entry["error"] = str(exc)
        if gd is not None:
            entry["uncommitted"] = sorted(uncommitted.get(dir, []))
        out["sessions"].append(entry)
    return out


def _since_checkpoint(history: Any, dir: str, last: dict | None) -> dict | None:
    """A compact summary of what changed since checkpoint ``last`` (None: there is none)."""
    if last is None:
        return None
    d = history.diff(dir, ref_of(last))
    arts = d.get("artifacts", {})
    return {
        "added": [a["name"] for a in arts.get("added", ())],
        "removed": [a["name"] for a in arts.get("removed", ())],
        "changed": [a["name"] for a in arts.get("changed", ())],
        "manifest": sorted(d.get("manifest") or {})
        + (["tags"] if any((d.get("tags") or {}).values()) else [])
        + (["metadata"] if any((d.get("metadata") or {}).values()) else []),
        "state": sorted(k for part in (d.get("state") or {}).values() for k in part),
    }
