"""``.spellignore``: gitignore-syntax patterns for paths the watcher and ``spell add`` skip."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["Ignore", "collect_files"]


class Ignore:
    def __init__(self, ws: "Workspace") -> None:
        self.ws = ws
        self._sig = object()
        self._spec: Any = None

    @property
    def spec(self) -> Any:
        """What ``match_file(path)`` asks of: the patterns as pathspec compiles them, or, when
        none re-includes (``!``), all of them as one regular expression (:class:`_AnyOf`)."""
        sig = self.ws.storage.signature(".spellignore")
        if sig != self._sig:
            import pathspec

            lines = []
            if sig is not None:
                lines = self.ws.storage.read(".spellignore").decode("utf-8", "replace").splitlines()
            spec = pathspec.GitIgnoreSpec.from_lines(lines)
            self._spec = _AnyOf.of(spec) or spec
            self._sig = sig
        return self._spec

    def matches(self, rel: str) -> bool:
        """True when the workspace-relative path ``rel`` is ignored."""
        return self.spec.match_file(rel)

    def matches_path(self, path: Path) -> bool:
        if self.ws.root is None:
            return self.spec.match_file(path.name)
        try:
            rel = os.path.relpath(path.resolve(), self.ws.root)
        except ValueError:
            rel = path.name
        if rel.startswith(".."):
            return self.spec.match_file(path.name)
        return self.spec.match_file(rel)


class _AnyOf:
    """Patterns that only exclude, as one regular expression: a path is ignored when any
    matches, so one match a path, where pathspec tries each pattern in turn (a bulk add asks
    for 20,000 paths, against the 14 patterns ``spell init`` writes)."""

    def __init__(self, regex: re.Pattern, anchored: bool = False) -> None:
        # pathspec searches (``*/`` has no anchor); when every pattern starts at ``^``, a
        # match finds the same, without trying each later position
        self._search = regex.match if anchored else regex.search

    @classmethod
    def of(cls, spec: Any) -> "_AnyOf | None":
        """``spec``'s patterns as one, or None when one re-includes (its order then matters)."""
        patterns = [p for p in spec.patterns if p.include is not None]
        if any(not p.include for p in patterns) or len({p.regex.flags for p in patterns}) > 1:
            return None
        if not patterns:
            return cls(re.compile(r"(?!)"))  # (matches nothing)
        # each pattern names a group (where a folder matched): named once, or re refuses
        parts = [_GROUP.sub("(?:", p.regex.pattern) for p in patterns]
        regex = re.compile("|".join(f"(?:{part})" for part in parts), patterns[0].regex.flags)
        return cls(regex, all(part.startswith("^") for part in parts))

    def match_file(self, path: str) -> bool:
        if path.startswith("/"):  # as pathspec normalises a path first
            path = path[1:]
        elif path.startswith("./"):
            path = path[2:]
        return self._search(path) is not None


_GROUP = re.compile(r"\(\?P<[A-Za-z_]\w*>")

#: How many folders below the one named ``spell add`` enters (SPEC §1: every reader has limits).
MAX_DEPTH = 100


def collect_files(
    ws: "Workspace", ignore: Ignore, args: Iterable[str]
) -> tuple[list[str], list[tuple[str, str]]]:
    """The files ``spell add`` stores for ``args``, and what it skipped with why.

    A directory stands for every file under it, recursively, in name order, minus
    what ``.spellignore`` excludes (an ignored directory is not entered) and
    hidden entries (an artifact name may not start with '.') and links (never followed,
    like directories that are links). The workspace's own
    ``.spell/``, ``sessions/`` and any ``.git/`` are never entered. Two files of one
    directory with the same name would become versions of one artifact: that is
    refused, naming both, before anything is stored.
    """
    chosen: list[str] = []
    skipped: list[tuple[str, str]] = []
    private = _private(ws)
    for arg in args:
        if _private_path(os.path.realpath(arg), private):
            skipped.append((arg, "spellfs's own files (.spell/, sessions/) are never artifacts"))
            continue
        if not os.path.isdir(arg):
            if ignore.matches_path(Path(arg)):
                skipped.append((arg, "in .spellignore"))
            else:
                chosen.append(arg)
            continue
        chosen.extend(_walk(ws, ignore, arg, skipped))
    return chosen, skipped


def _private_path(real: str, private: set[str]) -> bool:
    """Whether ``real`` is in the workspace's own folders: anything in ``.spell/``, anything in
    ``sessions/`` but a session's ``files/`` (an artifact's copy may be added elsewhere)."""
    for p in private:
        if real == p or real.startswith(p + os.sep):
            parts = real[len(p) + 1 :].split(os.sep)
            return not (p.endswith(f"{os.sep}sessions") and len(parts) >= 2 and parts[1] == "files")
    return False


def _private(ws: "Workspace") -> set[str]:
    """The real paths of the workspace's own folders, never walked for artifacts."""
    if ws.root is None:
        return set()
    return {os.path.realpath(os.path.join(ws.root, d)) for d in (".spell", "sessions")}


def _walk(ws: "Workspace", ignore: Ignore, top: str, skipped: list[tuple[str, str]]) -> list[str]:
    """The files under ``top``, as :func:`os.walk` (top-down, no links followed) gives them,
    from one ``scandir`` a folder: each entry's kind comes with it (a link or a regular
    file, from ``d_type``), where ``islink`` and ``isfile`` took two system calls a file."""
    from ..errors import UsageError
    from .artifact_log import valid_name

    spec = ignore.spec
    base = _relative_base(ws, top)
    private = _private(ws)
    found: list[str] = []
    seen: dict[str, str] = {}
    match = spec.match_file
    join = os.path.join

    def folder(dirpath: str, rel: str, depth: int) -> None:
        if depth > MAX_DEPTH:  # (os.walk recursed: a deep tree would crash it)
            raise UsageError(
                f"too deeply nested: {dirpath[:200]}… is more than {MAX_DEPTH} folders below "
                f"{top} (add the files of a shallower folder)"
            )
        dirs, files = [], []
        try:
            with os.scandir(dirpath) as entries:
                for entry in entries:
                    try:
                        is_dir = entry.is_dir()  # (a link to a folder too, as os.walk lists it)
                    except OSError:
                        is_dir = False
                    (dirs if is_dir else files).append(entry)
        except OSError:
            return  # unreadable: os.walk skipped it so
        prefix = base if not rel else (f"{base}/{rel}" if base else rel)
        keep = []
        for entry in sorted(dirs, key=_name):
            d = entry.name
            path = join(dirpath, d)
            if d.startswith(".") or os.path.realpath(path) in private:
                continue  # .git/, .spell/, sessions/ and hidden directories: never artifacts
            if match(f"{prefix}/{d}/" if prefix else f"{d}/"):
                skipped.append((path + "/", "in .spellignore"))
                continue
            if entry.is_symlink():  # said, never entered: a clone's link may point anywhere
                skipped.append((path, "a link: add what it points at by name"))
                continue
            keep.append(d)
        for entry in sorted(files, key=_name):
            f = entry.name
            path = join(dirpath, f)
            if f.startswith("."):
                skipped.append((path, "hidden: artifact names may not start with '.'"))
                continue
            try:
                link = entry.is_symlink()
                regular = not link and entry.is_file()
            except OSError:
                link = regular = False
            if link:  # a folder from a clone or an archive may link anywhere
                skipped.append((path, "a link: add what it points at by name"))
                continue
            if not regular:  # a FIFO would block a read; a device never ends
                skipped.append((path, "not a regular file: a FIFO, socket or device"))
                continue
            if match(f"{prefix}/{f}" if prefix else f):
                skipped.append((path, "in .spellignore"))
                continue
            if not valid_name(f):  # (a newline, a backslash …: one bad name no longer stops all)
                skipped.append((path, "not a valid artifact name: add it with --name"))
                continue
            if f in seen:
                raise UsageError(
                    f"two files would both be artifact {f}: {seen[f]} and {path} "
                    "(add one of them separately with --name)"
                )
            seen[f] = path
            found.append(path)
        for d in keep:
            folder(join(dirpath, d), f"{rel}/{d}" if rel else d, depth + 1)

    folder(top, "", 0)
    return found


def _name(entry: os.DirEntry) -> str:
    return entry.name


def _relative_base(ws: "Workspace", top: str) -> str:
    """``top`` relative to the workspace root ("" for the root), or "" when outside it."""
    if ws.root is None:
        return ""
    try:
        rel = os.path.relpath(os.path.realpath(top), os.path.realpath(ws.root))
    except ValueError:
        return ""
    if rel == "." or rel.startswith(".."):
        return ""
    return rel
