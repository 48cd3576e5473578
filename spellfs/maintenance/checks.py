"""``spell fsck``: every object verifies, every record file parses, every record points at an
object.

Problems carry what a repair needs (the object id, the file and line), so
``spell fsck --repair`` (spellfs/repair.py) can act on them without re-deriving.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from ..model import record_problem
from ..errors import IntegrityError, ManifestError, SpellError, UnsafePath
from ..store import RecordError, parse_records

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["Problem", "RECORD_FILES", "Report", "fsck"]

#: Kinds reported but not failures (a hand edit is the working copy doing its job; an
#: interrupted write was put back by the check, as by every command; the index is a cache).
NOT_FAILURES = frozenset(
    {
        "on-remote",
        "hand-edit",
        "stray-copy",
        "interrupted-write",
        "shared-sequence",
        "shared-checkpoint-number",
        "renumbered",
        "index-rebuilt",
    }
)
#: The append-only record files a session may hold.
RECORD_FILES = ("artifacts.yaml", "checkpoints.yaml", "runs.yaml", "calls.yaml")


@dataclass
class Problem:
    # corrupt-object, corrupt-pack, missing-object, on-remote, bad-manifest, bad-state, bad-record,
    # partial-record, stray-temp, unsafe-link, bad-checkpoint, index-rebuilt,
    # interrupted-write (put back), stray-copy, hand-edit (files/ against the records),
    # ambiguous-record, shared-sequence, shared-checkpoint-number, renumbered (identities
    # after a merge), shared-session-id (a session folder copied by hand)
    kind: str
    where: str
    detail: str
    oid: str | None = None
    line: int | None = None


@dataclass
class Report:
    objects: int = 0
    sessions: int = 0
    records: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every problem is only "on-remote": not local, but on the default remote
        (`spell pull`)."""
        return all(p.kind in NOT_FAILURES for p in self.problems)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "objects": self.objects,
            "sessions": self.sessions,
            "records": self.records,
            "on_remote": sum(p.kind == "on-remote" for p in self.problems),
            "problems": [p.__dict__ for p in self.problems],
        }


def check_record_file(ws: "Workspace", rel: str, report: Report) -> list[dict]:
    """Parse one record file line by line, reporting bad lines and an unfinished tail."""
    try:
        data = ws.storage.read(rel)
    except FileNotFoundError:
        return []
    good: list[dict] = []
    lines = data.split(b"\n")
    tail = lines.pop()
    for i, raw in enumerate(lines, 1):
        try:
            recs = [rec for _, rec in parse_records(raw + b"\n", rel, i)]
        except RecordError as exc:
            report.problems.append(Problem("bad-record", rel, str(exc), line=i))
            continue
        for rec in recs:
            wrong = record_problem(rel.rsplit("/", 1)[-1], rec)
            if wrong is not None:
                report.problems.append(
                    Problem(
                        "bad-record", rel, f"{rel}:{i}: {wrong} (the record is ignored)", line=i
                    )
                )
                recs = []
        good.extend(recs)
    if tail:
        report.problems.append(
            Problem(
                "partial-record",
                rel,
                f"{rel}:{len(lines) + 1}: ends with an unfinished record ({len(tail)} bytes)",
                line=len(lines) + 1,
            )
        )
    return good


def _object_links(ws: "Workspace") -> list[Problem]:
    """``unsafe-link`` problems for links where spellfs keeps its own folders and files
    (``.spell``, ``.spell/objects`` with its fan-out and pack folders, ``.spell/tmp`` and the
    rest of :data:`~spellfs.store.links.INTERNAL`, the SQLite caches): spellfs refuses to write
    or sweep through them, and a cloned repository may carry them."""
    from ..store.links import INTERNAL, INTERNAL_FILES, linked_file, real_dir

    if ws.memory or ws.root is None:
        return []
    root = os.fspath(ws.root)
    try:
        if not real_dir(f"{root}/.spell", ".spell"):
            return []
    except UnsafePath as exc:
        return [Problem("unsafe-link", ".spell", str(exc))]
    found = []
    for name in INTERNAL:
        rel = f".spell/{name}"
        try:
            real_dir(f"{root}/{rel}", rel)
        except UnsafePath as exc:
            found.append(Problem("unsafe-link", rel, str(exc)))
    for name in INTERNAL_FILES:
        if linked_file(f"{root}/.spell/{name}"):
            rel = f".spell/{name}"
            found.append(Problem("unsafe-link", rel, f"{rel} is a link or not a file (not used)"))
    if any(p.where == ".spell/objects" for p in found) or not os.path.isdir(
        f"{root}/.spell/objects"
    ):
        return found
    for name in sorted(os.listdir(f"{root}/.spell/objects")):
        rel = f".spell/objects/{name}"
        try:
            real = real_dir(f"{root}/{rel}", rel)
        except UnsafePath as exc:
            found.append(Problem("unsafe-link", rel, str(exc)))
            continue
        if name == "pack" and not real:  # a file where packs and journals go: every store fails
            found.append(
                Problem("corrupt-pack", rel, f"{rel} is a file, not a folder (no store can write)")
            )
    return found


def fsck(ws: "Workspace", advance: Callable[[int], None] | None = None) -> Report:
    report = Report()
    store = ws.objects
    links = _object_links(ws)
    report.problems.extend(links)
    linked = any(p.where in (".spell", ".spell/objects") for p in links)  # nothing read there
    for oid in [] if linked else store:
        report.objects += 1
        try:
            store.verify(oid)
        except IntegrityError as exc:
            report.problems.append(Problem("corrupt-object", oid, str(exc), oid=oid))
        if advance:
            advance(1)
    packs = getattr(store, "packs", None)
    for name, why in sorted(packs.bad.items() if packs is not None else ()):
        # (its objects are then missing: reported below with what needs them)
        report.problems.append(Problem("corrupt-pack", f".spell/objects/pack/{name}", why))
    seen: set[str] = set()
    missing: set[str] = set()
    damaged = ws.index.check()
    if damaged:  # a cache: rebuilt from the files, nothing lost; said, not failed
        report.problems.append(
            Problem(
                "index-rebuilt",
                ".spell/index.sqlite",
                f".spell/index.sqlite was damaged ({damaged}); rebuilt from the files",
            )
        )
    _check_state(ws, "state.yaml", report)
    ids: dict[str, list[str]] = {}  # session id -> the directories whose manifest says it
    for dir in ws.storage.listdir("sessions"):
        report.sessions += 1
        base = f"sessions/{dir}"
        link = _link_problem(ws, base)
        if link is not None:  # never followed: reported, and the session is not read
            report.problems.append(link)
            continue
        try:
            ids.setdefault(ws.sessions.manifest(dir)["id"], []).append(dir)
        except (ManifestError, SpellError) as exc:
            report.problems.append(Problem("bad-manifest", f"{base}/session.yaml", str(exc)))
        _check_state(ws, f"{base}/state.yaml", report)
        checkpoints: list[dict] = []
        for name in RECORD_FILES:
            rel = f"{base}/{name}"
            recs = check_record_file(ws, rel, report)
            if name == "checkpoints.yaml":
                checkpoints = recs
            for rec in recs:
                report.records += 1
                for key in ("hash", "tree", "script_hash"):
                    oid = rec.get(key)
                    if (
                        isinstance(oid, str)
                        and len(oid) == 64
                        and oid not in missing
                        and not store.has(oid)
                    ):
                        _report_missing(report, missing, oid, rel, _label(rec))
        _check_trees(ws, base, checkpoints, seen, missing, report)
        _check_working_copy(ws, dir, report)
    _shared_ids(ids, report)
    from .temps import stray_temps

    for rel, age in stray_temps(ws):
        report.problems.append(
            Problem(
                "stray-temp",
                rel,
                f"{rel}: an unfinished write, {int(age // 60)} minutes old "
                "(`spell fsck --repair` or `spell gc` removes it)",
            )
        )
    _classify_missing(ws, report)
    return report


def _check_working_copy(ws: "Workspace", dir: str, report: Report) -> None:
    """files/ entries that match no record or differ from it; records that break identities."""
    from ..model import identity_problems

    try:
        found = ws.worktree.problems(dir)
    except SpellError:
        return  # a broken session is reported above
    for kind, name, detail in found:
        report.problems.append(Problem(kind, f"sessions/{dir}/files/{name}", detail))
    for kind, where, detail in identity_problems(ws, dir):
        report.problems.append(Problem(kind, where, detail))
    rel = f"sessions/{dir}/checkpoints.yaml"
    for number, recs in ws.history.duplicated_numbers(dir).items():
        both = " and ".join(
            f"{r['number']}:{r['tree'][:8]} ({str(r.get('message') or '')[:40]!r}, {r.get('time')})"
            for r in recs
        )
        report.problems.append(
            Problem(
                "shared-checkpoint-number",
                rel,
                f"{rel}: checkpoint {number} is used by {len(recs)} checkpoints after a merge: "
                f"{both} (`{number}` is ambiguous; name them as N:TREE)",
            )
        )


def _shared_ids(ids: dict[str, list[str]], report: Report) -> None:
    """A session folder copied by hand (``cp -r``) holds the same id as its original: every
    reference to either is then ambiguous."""
    for sid, dirs in sorted(ids.items()):
        if len(dirs) > 1:
            shown = ", ".join(f"sessions/{d}" for d in sorted(dirs))
            report.problems.append(
                Problem(
                    "shared-session-id",
                    f"sessions/{sorted(dirs)[1]}",
                    f"session id {sid} is in {len(dirs)} folders: {shown} (a copy made by hand; "
                    "`spell fork` makes a copy with its own id: remove or move out the copy)",
                )
            )


def _link_problem(ws: "Workspace", base: str) -> Problem | None:
    """An ``unsafe-link`` problem when the session holds a link or special file where spellfs
    reads."""
    try:
        for rel in (
            base,
            f"{base}/files",
            f"{base}/session.yaml",
            f"{base}/state.yaml",
            *(f"{base}/{name}" for name in RECORD_FILES),
        ):
            ws.storage.signature(rel)
        ws.storage.isdir(f"{base}/files")
    except UnsafePath as exc:
        # "refused: <path> is a ...": the path may hold spaces (a folder made by hand), the
        # rest of the message never says " is a " again
        where = str(exc).removeprefix("refused: ").rsplit(" is a ", 1)[0]
        return Problem("unsafe-link", where, str(exc))
    return None


def _check_state(ws: "Workspace", rel: str, report: Report) -> None:
    try:
        ws.state.load(rel)
    except (ManifestError, SpellError) as exc:
        report.problems.append(Problem("bad-state", rel, str(exc)))


def _label(rec: dict) -> str:
    """How a record names itself to a person: an artifact, a checkpoint, a run's script."""
    if rec.get("name"):
        return f"{rec['name']} v{rec['version']}" if rec.get("version") else rec["name"]
    if rec.get("number") is not None:
        return f"checkpoint {rec['number']}"
    if rec.get("script"):
        return f"script {rec['script']}"
    return f"#{rec.get('seq', '?')}"


def _report_missing(report: Report, missing: set[str], oid: str, where: str, what: str) -> None:
    """One problem per object, however many records or trees name it."""
    missing.add(oid)
    report.problems.append(
        Problem("missing-object", where, f"object {oid} ({what}, {where}) is missing", oid=oid)
    )


def _check_trees(
    ws: "Workspace",
    base: str,
    checkpoints: list[dict],
    seen: set[str],
    missing: set[str],
    report: Report,
) -> None:
    """Every object a checkpoint tree reaches (parents, pages, contents) exists and parses."""
    for cp in checkpoints:
        tree = cp.get("tree")
        if not isinstance(tree, str) or not ws.objects.has(tree):
            continue  # reported above as a missing object
        where = f"{base}/checkpoints.yaml"
        try:
            for oid in ws.history.trees.refs(tree, seen):
                if oid not in missing and not ws.objects.has(oid):
                    _report_missing(report, missing, oid, where, f"checkpoint {cp.get('number')}")
        except SpellError as exc:
            report.problems.append(
                Problem("bad-checkpoint", where, f"checkpoint {cp.get('number')} of {where}: {exc}")
            )


def _classify_missing(ws: "Workspace", report: Report) -> None:
    """Tell "not local but on the default remote" (on-remote) apart from "lost" (missing-object)."""
    missing = [p for p in report.problems if p.kind == "missing-object" and p.oid]
    if not missing or not ws.config.remotes or ws.memory:
        return
    from ..remote import get_remote, remote_has

    remote = get_remote(ws)
    try:
        there = remote_has(remote, {p.oid for p in missing})
    except SpellError as exc:
        for p in missing:
            p.detail += f" (remote {remote.name} could not be checked: {exc})"
        return
    for p in missing:
        if p.oid in there:
            p.kind = "on-remote"
            p.detail = p.detail.replace(
                " is missing",
                f" is not local but on remote {remote.name} (`spell pull` fetches it)",
            )
        else:
            p.detail = p.detail.replace(
                " is missing", f" is lost: not local and not on remote {remote.name}"
            )
