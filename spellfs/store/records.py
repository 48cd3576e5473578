"""Append-only record files: one YAML flow mapping per line in a block sequence.

A record is written as ``- {"seq": 7, "name": "notes.md", ...}``: JSON syntax is a
valid YAML flow mapping, so the file is YAML that ruamel.yaml loads, ``grep``
finds a record, an append is one ``write``, and git's ``merge=union`` merges two
clones' appends line by line. Writing costs a ``json.dumps`` (µs), not a YAML
emitter (hundreds of µs); reading takes the JSON fast path and falls back to
YAML for a line somebody wrote by hand.
"""

from __future__ import annotations

import json
import re
import threading
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any, Iterator

from ..errors import ManifestError, UsageError
from .jsonio import MAX_DEPTH, depth_of, too_deep

__all__ = ["encode_record", "parse_records", "RecordError", "RecordLog"]

# Characters YAML does not allow raw in a quoted scalar, and the ones it reads as
# line breaks (NEL, LS, PS: folded to a space, or a key split over two lines);
# JSON leaves them all raw.
_NON_PRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")


_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(", ", ": "))
_local = threading.local()


def _encode(record: dict[str, Any]) -> str:
    """``_encoder.encode``, with its C encoder made once a thread rather than once a call (half
    the cost of a record). Each keeps its own marks of the containers being encoded (a value
    that holds itself is refused, not followed), and is dropped after a failure, which may have
    left marks behind."""
    made = getattr(_local, "made", None)
    if made is None:
        if c_make_encoder is None:  # (no C accelerator: the pure-Python encoder)
            return _encoder.encode(record)
        made = _local.made = c_make_encoder(
            {}, _encoder.default, encode_basestring, None, ": ", ", ", False, False, False
        )
    try:
        return "".join(made(record, 0))
    except BaseException:
        _local.made = None
        raise


def _escape(m: re.Match) -> str:
    return "\\u%04x" % ord(m.group())


def encode_record(record: dict[str, Any]) -> bytes:
    """One record as one line of YAML, newline included."""
    try:
        text = _encode(record)
    except ValueError as exc:
        raise UsageError(f"value cannot be stored: {exc}") from None
    except RecursionError:
        raise UsageError(
            "value cannot be stored: it holds itself, or is nested too deeply"
        ) from None
    if (not text.isascii() or "\x7f" in text) and _NON_PRINTABLE.search(text):  # (ASCII: quick)
        text = _NON_PRINTABLE.sub(_escape, text)
    return b"- " + text.encode("utf-8", "surrogatepass") + b"\n"


class RecordError(ManifestError):
    pass


def parse_records(
    data: bytes, where: str, first_line: int = 1
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, record) for each complete line of ``data``.

    A trailing line without its newline is a write that never finished (a killed
    process): it is not yielded. A line that is neither JSON nor YAML raises
    :class:`RecordError` naming file and line.
    """
    lines = data.split(b"\n")
    lines.pop()  # the part after the last newline: empty, or an unfinished write
    loads = json.loads
    for i, raw in enumerate(lines):
        if not raw.strip() or raw.startswith(b"#"):
            continue
        lineno = first_line + i
        if raw.startswith(b"- {"):
            try:
                rec = loads(raw[2:])
            except RecursionError:
                raise RecordError(too_deep(f"{where}:{lineno}")) from None
            except ValueError:
                rec = _yaml_line(raw, where, lineno)
            if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and depth_of(rec) > MAX_DEPTH:
                raise RecordError(too_deep(f"{where}:{lineno}"))
        else:
            rec = _yaml_line(raw, where, lineno)
        if not isinstance(rec, dict):
            raise RecordError(f"{where}:{lineno}: not a record (expected `- {{key: value, ...}}`)")
        yield lineno, rec


def _yaml_line(raw: bytes, where: str, lineno: int) -> Any:
    from .yamlio import load_yaml

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordError(f"{where}:{lineno}: not UTF-8") from None
    try:
        doc = load_yaml(text, where)
    except ManifestError as exc:  # one line: the line is known, whatever the parser's mark says
        reason = str(exc).split(": ", 1)[1] if ": " in str(exc) else str(exc)
        raise RecordError(f"{where}:{lineno}: {reason}") from None
    if not isinstance(doc, list) or len(doc) != 1:
        raise RecordError(f"{where}:{lineno}: not a record (expected `- {{key: value, ...}}`)")
    return doc[0]


_TAIL = 256  # bytes of a log's read part re-read to tell an append from a rewrite


class RecordLog:
    """A record file read incrementally: only what was appended since the last look.

    The file is tracked by inode and offset, so a replaced or shortened file is read
    again from the start, and an unfinished last line waits for its newline. A
    subclass indexes each record in :meth:`apply` and clears its views in :meth:`reset`.
    """

    def __init__(self, storage: Any, rel: str) -> None:
        self.storage = storage
        self.rel = rel
        self.reset()

    def reset(self) -> None:
        self.inode: Any = None
        self.offset = 0
        self.line = 1
        self.records: list[dict[str, Any]] = []
        self._seen: Any = None  # the file's signature when the view was last brought up to date
        self._tail = b""  # the last bytes read before ``offset``: checked before reading on
        #: bumped on every reset: a view keyed on (inode, offset) alone may be another file's
        self.generation = getattr(self, "generation", 0) + 1

    def apply(self, rec: dict[str, Any]) -> None:
        raise NotImplementedError

    def apply_own(self, rec: dict[str, Any]) -> None:
        """Take a record this process built and appended: valid by construction, where a line
        read from the file may be hand-written or merged (:meth:`apply` checks those)."""
        self.apply(rec)

    def refresh(self) -> "RecordLog":
        """Bring the view up to date with the file (one stat when nothing changed)."""
        sig = self.storage.signature(self.rel)
        if sig is None:
            if self.records:
                self.reset()
            return self
        if sig == self._seen:
            return self
        inode, size = sig[0], sig[1]
        if inode != self.inode or size < self.offset:
            self.reset()
            self.inode = inode
        keep = len(self._tail)
        data = self.storage.read_from(self.rel, self.offset - keep)
        if data[:keep] != self._tail:
            # Not what was read there: the file was rewritten, not appended to (`git checkout`
            # unlinks and recreates it, and the file system may hand out the same inode).
            self.reset()
            self.inode = inode
            data, keep = self.storage.read_from(self.rel, 0), 0
        tail = data[keep:]
        consumed = tail.rfind(b"\n") + 1
        if consumed:
            for _, rec in parse_records(tail[:consumed], self.rel, self.line):
                self.apply(rec)
            self.line += tail.count(b"\n", 0, consumed)
            self.offset += consumed
            self._tail = data[: keep + consumed][-_TAIL:]
        self._seen = sig
        return self

    def append(self, data: bytes, records: list[dict[str, Any]]) -> None:
        """Append ``data``, one encoded line per record, and take the records in (under the
        lock, after :meth:`refresh`): through the descriptor the last append kept open when the
        file is the one read, as read (:meth:`~.storage.FsStorage.append_known`)."""
        done = None
        if self.inode is not None:
            done = self.storage.append_known(self.rel, data, self.inode, self.offset)
        if done is None:
            self.note_append(self.storage.append(self.rel, data, keep=True), data, records)
        else:
            self.note_append(done[0], data, records, done[1])

    def note_append(
        self, start: int, data: bytes, records: list[dict[str, Any]], sig: Any = None
    ) -> None:
        """Account for lines we appended ourselves at ``start``, one per record (we hold the
        lock); ``sig``: the file's signature taken after the append, if one was."""
        if start != self.offset:
            self.refresh()
            return
        self.offset = start + len(data)
        self._tail = (self._tail + data)[-_TAIL:]
        self.line += len(records)
        for rec in records:
            self.apply_own(rec)
        if sig is None:
            sig = self.storage.signature(self.rel)
        if sig is not None and sig[0] == self.inode and sig[1] == self.offset:
            self._seen = sig  # nothing but what we read and wrote: the next refresh reads nothing
