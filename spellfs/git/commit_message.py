"""The message `spell commit` writes: per session, what the staged change adds (versions
stored and deleted, checkpoints, runs, model calls, manifest and state changes), read from
git's diff of the record files, and those counts in words.
"""

from __future__ import annotations

from .plumbing import shared

__all__ = ["RECORD_FILES", "describe", "summary"]

RECORD_FILES = ("artifacts.yaml", "checkpoints.yaml", "runs.yaml", "calls.yaml")


def summary(repo, prefix: str) -> tuple[dict[str, dict[str, int]], list[str], int]:
    """Per session: what the staged change adds; other workspace paths; objects added."""
    sessions: dict[str, dict[str, int]] = {}
    other, objects = [], 0
    names = repo.git.diff(
        "--cached", "--name-status", "-z", "--no-renames", "--", prefix or "."
    ).split("\0")
    record_files = []
    for status_, path in zip(names[0::2], names[1::2]):
        path = path[len(prefix) :] if path.startswith(prefix) else path
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
        elif shared(path):
            other.append(path)
    if record_files:
        diff = repo.git.diff("--cached", "-U0", "--no-color", "--no-ext-diff", "--", *record_files)
        current = None
        for line in diff.splitlines():
            if line.startswith("+++ "):
                p = line[4:]
                p = p[2:] if p.startswith("b/") else p
                p = p[len(prefix) :] if p.startswith(prefix) else p
                current = p.split("/") if p != "/dev/null" else None
            elif line.startswith("+- ") and current and len(current) >= 3:
                s = sessions.setdefault(current[1], {})
                kind = {
                    "artifacts.yaml": "stored",
                    "checkpoints.yaml": "checkpoints",
                    "runs.yaml": "runs",
                    "calls.yaml": "model calls",
                }[current[2]]
                if kind == "stored" and '"op": "delete"' in line:
                    kind = "deleted"
                s[kind] = s.get(kind, 0) + 1
    for s in sessions.values():
        files = s.pop("_files", 0)
        if files and not s.get("stored") and not s.get("deleted"):
            s["files changed"] = files
    return sessions, other, objects


def describe(counts: dict[str, int]) -> str:
    words = []
    for key in ("new session", "removed", "manifest changed", "state changed"):
        if counts.get(key):
            words.append(key)
    plural = {
        "stored": ("artifact version stored", "artifact versions stored"),
        "deleted": ("artifact deleted", "artifacts deleted"),
        "checkpoints": ("checkpoint", "checkpoints"),
        "runs": ("run", "runs"),
        "model calls": ("model call", "model calls"),
        "files changed": ("file changed", "files changed"),
    }
    for key, (one, many) in plural.items():
        n = counts.get(key, 0)
        if n:
            words.append(f"{n} {one if n == 1 else many}")
    return ", ".join(words) or "changed"
