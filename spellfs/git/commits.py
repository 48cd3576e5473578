"""Committing a git-shared workspace (SPEC §6).

:func:`commit` stages the workspace's shared paths (:data:`SHARED`), resolves what
spell can resolve (conflicted ``files/`` copies are rewritten from the merged
records; a file still holding conflict markers is refused) and writes a commit
message summarising what each session gained (:mod:`spellfs.git.commit_message`).

Objects and ``files/`` copies above ``git.max_object_bytes`` are kept out of git:
``spell commit`` appends their paths to the workspace ``.gitignore`` (union-merged,
only ever growing) and they travel through a remote (``spell push`` /
``spell pull``; a read of a missing object fetches it from the default remote).

The zstd objects of latest versions whose ``files/`` copy this commit carries byte for
byte are left out too (listed in a local, self-ignoring ``.gitignore`` of their fan-out
directory once committed) and staged
again when they stop being the latest: :mod:`spellfs.git.exclude`.

`spell status` is :mod:`spellfs.git.status_report`; what git says of the workspace, which
both read, is :mod:`spellfs.git.plumbing`. Setting a repository up, the merge driver and
reconciliation live in :mod:`spellfs.git.repo`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SpellError
from .repo import (
    GITATTRIBUTES,
    GITIGNORE,
    HEAD_FILE,
    catch_up,
    configure_driver,
    driver_configured,
    ensure_lines,
    open_repo,
    repo_prefix,
)
from ..store import atomic_write
from . import exclude as carry
from .commit_message import describe, summary
from .plumbing import SHARED, git_error, is_merging, porcelain, shared

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["CommitResult", "commit"]

_CONFLICT = re.compile(rb"^(<<<<<<<|>>>>>>>) ", re.M)


# -- commit ---------------------------------------------------------------------
@dataclass
class CommitResult:
    committed: bool
    sha: str | None = None
    message: str = ""
    sessions: dict[str, dict[str, int]] = field(default_factory=dict)
    kept_out: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    recorded: dict[str, dict[str, list[str]]] = field(
        default_factory=dict
    )  # hand edits recorded first
    unrecorded: dict[str, dict[str, list[str]]] = field(
        default_factory=dict
    )  # in finished sessions
    #: objects left out of git because a committed files/ copy carries them
    carried: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "committed": self.committed,
            "commit": self.sha,
            "message": self.message,
            "sessions": self.sessions,
            "kept_out": self.kept_out,
            "resolved": self.resolved,
            "warnings": self.warnings,
            "recorded": self.recorded,
            "unrecorded": self.unrecorded,
            "carried_by_files": self.carried,
        }


def _record_hand_edits(ws: "Workspace", result: CommitResult) -> None:
    """What `spell save` does first, for every session: record hand edits before committing them.
    A finished session's are left as they are (read-only) and reported."""
    for dir, wc in ws.worktree.scan_all().items():
        if wc.clean:
            continue
        try:
            active = ws.sessions.manifest(dir)["status"] == "active"
        except SpellError:
            continue
        if active:
            result.recorded[dir] = ws.worktree.record(dir).as_dict()
        else:
            result.unrecorded[dir] = wc.as_dict()


def _broken_yaml(ws: "Workspace", paths: list[str]) -> list[str]:
    """Hand-editable YAML files among ``paths`` that do not load (committed anyway, but said)."""
    from ..errors import ManifestError
    from ..store import load_yaml

    out = []
    for rel in paths:
        name = rel.rsplit("/", 1)[-1]
        if name in ("session.yaml", "state.yaml", "spell.yaml") or (
            rel.startswith("templates/") and name.endswith(".yaml")
        ):
            try:
                load_yaml((ws.root / rel).read_bytes(), rel)
            except ManifestError as exc:
                out.append(str(exc))
            except OSError:
                pass  # deleted: nothing to load
    return out


def _escape_ignore(path: str) -> str:
    from ..model.absent import ignore_line  # (the scan reads these lines back)

    return ignore_line(path)


def _keep_out_large(ws: "Workspace", repo, prefix: str, items: list[tuple[str, str]]) -> list[str]:
    """Ignore new or changed objects and copies above git.max_object_bytes; return their paths."""
    limit = ws.config.get("git.max_object_bytes")
    large = []
    for _xy, path in items:
        parts = path.split("/")
        if not (
            path.startswith(".spell/objects/")
            or (len(parts) == 4 and parts[0] == "sessions" and parts[2] == "files")
        ):
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


def commit(ws: "Workspace", message: str | None = None) -> CommitResult:
    """Stage the workspace's shared paths and commit them, resolving what spell can resolve."""
    import git

    repo = open_repo(ws.root)
    ensure_lines(ws.root / ".gitignore", GITIGNORE)
    ensure_lines(ws.root / ".gitattributes", GITATTRIBUTES)
    ws.objects.unpack(ws.storage.fsync)  # type: ignore[attr-defined]  # git carries loose ones
    if not driver_configured(Path(repo.git_dir)):
        configure_driver(ws.root)
    prefix = repo_prefix(repo, ws.root)
    result = CommitResult(False)
    try:
        # files/ copies are derived: a conflicted or stale one is rewritten from the records.
        unmerged = {
            e.split("\t", 1)[1][len(prefix) :]
            for e in repo.git.ls_files("-u", "-z", "--", prefix or ".").split("\0")
            if "\t" in e
        }
        catch_up(
            ws,
            Path(repo.git_dir),
            {p.split("/")[1] for p in unmerged if p.startswith("sessions/") and p.count("/") >= 2},
        )
        _record_hand_edits(ws, result)
        for p in sorted(unmerged):
            parts = p.split("/")
            if len(parts) == 4 and parts[0] == "sessions" and parts[2] == "files":
                result.resolved.append(p)
            elif os.path.exists(ws.root / p) and _CONFLICT.search((ws.root / p).read_bytes()):
                raise SpellError(
                    f"merge conflict: {p} still has conflict markers "
                    "(edit it to keep what you want, then run `spell commit` again)"
                )
            elif not shared(p):
                raise SpellError(
                    f"merge conflict: {p} (resolve it with git, then run `spell commit` again)"
                )
        items = porcelain(repo, prefix)
        result.kept_out = _keep_out_large(
            ws, repo, prefix, [(xy, p) for xy, p in items if shared(p)]
        )
        # objects a files/ copy carries stay out of git; a listed one that no longer is the
        # latest clean copy is let in again, so this commit stages it (spellfs.git.exclude)
        odir = carry.objects_dir(ws)
        eligible = carry.candidates(ws)
        carry.remove_entries(odir, carry.entries(odir) - set(eligible))
        # new to git: untracked, or staged by hand since HEAD (not during a merge, where the
        # other side's objects are staged too and must stay)
        new = ("??", "A ", "AM") if not is_merging(repo) else ("??",)
        fresh = {
            p[15:17] + p[18:] for xy, p in items if xy in new and p.startswith(".spell/objects/")
        }
        tracked = set(repo.git.ls_files("-z", "--", *(prefix + s for s in SHARED)).split("\0"))
        specs = [
            prefix + s
            for s in SHARED
            if (ws.root / s).exists()
            or any(t == prefix + s or t.startswith(prefix + s + "/") for t in tracked)
        ]
        if specs:
            repo.git.add("-A", "--", *specs)
        carried = carry.unstage_carried(ws, repo, prefix, fresh, eligible)
        sessions, other, objects = summary(repo, prefix)
        merging = is_merging(repo)
        if not sessions and not other and not objects and not merging:
            return result
        staged = repo.git.diff("--cached", "--name-only", "-z", "--", prefix or ".").split("\0")
        result.warnings = _broken_yaml(ws, [p[len(prefix) :] for p in staged if p])
        result.sessions = sessions
        n = len(sessions)
        subject = (
            f"spell: {n} session{'s' if n != 1 else ''} changed"
            if n
            else "spell: workspace changed"
            if other or objects
            else "spell: merge"
        )
        body = [f"- {d}: {describe(c)}" for d, c in sorted(sessions.items())]
        if other:
            body.append(
                f"- workspace: {', '.join(sorted(other)[:10])}" + (" …" if len(other) > 10 else "")
            )
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
            changed = set(
                repo.git.diff("--cached", "--name-only", "-z", "--", *specs).split("\0")
            ) - {""}
            only = [s for s in specs if any(c == s or c.startswith(s + "/") for c in changed)]
            repo.git.commit("-q", "-m", result.message, "--", *only)
        result.committed = True
        carry.add_entries(odir, carried)  # only now: their copies are committed
        result.carried = sorted(carried)
        result.sha = repo.git.rev_parse("HEAD")  # (gitpython cannot read a sha256 repository's)
        atomic_write(ws.root / HEAD_FILE, (result.sha + "\n").encode())
    except git.GitCommandError as exc:
        raise git_error(exc.command[1] if len(exc.command) > 1 else "command", exc) from None
    return result
