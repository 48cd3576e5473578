"""Validation of the names users give: artifact names, tags, types, ids.

Everything here runs before a name becomes a path, so no name can reach outside
its session directory.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from .errors import UsageError

__all__ = [
    "created_bounds",
    "check_artifact_name",
    "check_display_name",
    "jsonable",
    "new_session_id",
    "now",
    "parse_time",
    "printable",
    "slugify",
    "usable_name",
    "utc_key",
    "whole_number",
]

MAX_NAME_BYTES = 255
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f/\\]")
#: Characters that make a name display as something else: C1 controls (U+0085 is a line
#: break), bidirectional overrides and isolates (``rtl\u202egnp.exe`` shows as ``rtlexe.png``),
#: zero-width characters and the BOM (two names that look the same).
_LYING = re.compile("[\x80-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def _lying(kind: str, value: str) -> None:
    m = _LYING.search(value)
    if m:
        raise UsageError(
            f"invalid {kind} {value[:60]!r}: contains U+{ord(m.group()):04X} (invisible, "
            "direction-changing or control characters would make it display as another name)"
        )


_SLUG = re.compile(r"[^a-z0-9]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_WHOLE = re.compile(r"[0-9]{1,18}\Z")


#: Names already found valid. The check is a pure function of an immutable ``str``, and one
#: file of ``spell add`` meets it three times (the folder walk, the store, the record read
#: back): the second and third are a dict lookup. Bounded: cleared when full.
_VALID_NAMES: dict[str, None] = {}
_VALID_NAMES_MAX = 1 << 16


def _plain(text: str) -> bool:
    """Whether ``text`` is printable ASCII: no control, invisible or surrogate character can be
    in it, a character is a byte, and of the patterns only '/' and '\\' could match."""
    return text.isascii() and text.isprintable()


def _bad_chars(text: str, plain: bool) -> bool:
    """Whether ``text`` holds '/', '\\' or a control character (:data:`_BAD_CHARS`)."""
    return ("/" in text or "\\" in text) if plain else bool(_BAD_CHARS.search(text))


def _shown(name: str) -> str:
    """A name as an error quotes it: its first 60 characters."""
    return repr(name[:60]) + ("…" if len(name) > 60 else "")


def check_artifact_name(name: object) -> str:
    """An artifact name is one path component: it names ``files/<name>`` and nothing else."""
    if type(name) is str and name in _VALID_NAMES:
        return name
    if isinstance(name, bytes):
        try:
            name = name.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError("invalid artifact name: not UTF-8") from None
    if not isinstance(name, str):
        raise UsageError(f"invalid artifact name: expected a string, got {type(name).__name__}")
    if not name:
        raise UsageError("invalid artifact name: empty")
    plain = _plain(name)  # (most names: no pattern need look)
    if (len(name) if plain else len(name.encode("utf-8", "surrogatepass"))) > MAX_NAME_BYTES:
        raise UsageError(
            f"invalid artifact name {_shown(name)}: longer than {MAX_NAME_BYTES} bytes"
        )
    if name in (".", "..") or name.startswith("."):
        raise UsageError(f"invalid artifact name {_shown(name)}: may not start with '.'")
    if _bad_chars(name, plain):
        raise UsageError(
            f"invalid artifact name {_shown(name)}: may not contain '/', '\\' or control characters"
        )
    if not plain:
        if _SURROGATE.search(name):
            raise UsageError(f"invalid artifact name {_shown(name)}: not valid unicode")
        _lying("artifact name", name)
    if name != name.strip():
        raise UsageError(f"invalid artifact name {_shown(name)}: leading or trailing spaces")
    if type(name) is str:  # (a subclass may compare or hash as something else)
        if len(_VALID_NAMES) >= _VALID_NAMES_MAX:
            _VALID_NAMES.clear()
        _VALID_NAMES[name] = None
    return name


#: A session name is at most this many characters: longer ones could never name the session
#: on the command line (a reference is refused past 200 characters before names are tried).
MAX_DISPLAY_NAME = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_display_name(kind: str, value: object) -> str:
    """A free-text name people read and type (a session's).

    Refused: what would print as something else (C0/C1 controls such as ESC and BEL, which
    a terminal runs as commands; invisible or direction-changing characters), and what could
    never name the session again, so ``spell show NAME`` works for every name ``spell new``
    takes: ``/`` or ``\\``, a leading ``.``, more than :data:`MAX_DISPLAY_NAME` characters.
    """
    if not isinstance(value, str) or len(value) > MAX_DISPLAY_NAME:
        raise UsageError(f"invalid {kind}: a string of at most {MAX_DISPLAY_NAME} characters")
    if not value.strip() or "\n" in value or "\r" in value:
        raise UsageError(
            f"invalid {kind}: {value[:40]!r} (it needs a visible character and no line breaks)"
        )
    shown = repr(value[:60]) + ("…" if len(value) > 60 else "")
    m = _CONTROL.search(value)
    if m:
        raise UsageError(
            f"invalid {kind} {shown}: contains U+{ord(m.group()):04X} (control characters "
            "would print as terminal commands, or not at all)"
        )
    if "/" in value or "\\" in value or value.startswith("."):
        raise UsageError(
            f"invalid {kind} {shown}: may not contain '/' or '\\' or start with '.' (it could "
            "not name the session: those name paths)"
        )
    _lying(kind, value)
    return value


def usable_name(text: object, fallback: str = "session") -> str:
    """``text`` made a name :func:`check_display_name` takes: what it refuses becomes a space,
    leading dots go, and it is cut to :data:`MAX_DISPLAY_NAME`. For names spellfs derives from
    something else (a fork of a session whose hand-edited name it refuses, a script's file
    name), which must not fail where the user named nothing. A name it takes is kept as is."""
    try:
        return check_display_name("name", text)
    except UsageError:
        pass
    if not isinstance(text, str):
        return fallback
    text = _UNSAFE_IN_NAME.sub(" ", text).lstrip(". ")[:MAX_DISPLAY_NAME].strip()
    return text or fallback


_UNSAFE_IN_NAME = re.compile(
    "[\x00-\x1f\x7f-\x9f/\\\\\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]+"
)
_UNPRINTABLE = re.compile(  # (and a byte that is not UTF-8, held as a lone surrogate)
    "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\udc80-\udcff]"
)


def printable(text: str, keep: str = "") -> str:
    """``text`` with control, invisible and direction-changing characters shown as escapes
    (``\\x1b``, ``\\u202e``), except those in ``keep``: for printing what was read from
    disk (a hand-edited or cloned ``session.yaml``) to a terminal, which would run ESC and
    OSC sequences (set the title, write the clipboard)."""

    def esc(m: re.Match) -> str:
        c = m.group()
        if c in keep:
            return c
        if 0xDC80 <= ord(c) <= 0xDCFF:  # a file name's byte that is not UTF-8
            return f"\\x{ord(c) - 0xDC00:02x}"
        return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"

    return _UNPRINTABLE.sub(esc, text)


def check_word(kind: str, value: object, limit: int = 200) -> str:
    plain = isinstance(value, str) and _plain(value)
    if not isinstance(value, str) or not value or len(value) > limit or _bad_chars(value, plain):
        raise UsageError(
            f"invalid {kind}: {str(value)[:60]!r} (a non-empty string without '/' or control "
            f"characters, at most {limit} characters)"
        )
    if not plain:
        _lying(kind, value)
    return value


def check_tags(tags: object) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, dict) and not tags:
        return []
    if isinstance(tags, str) or not isinstance(tags, (list, tuple)):
        raise UsageError("invalid tags: expected a list of strings")
    out: list[str] = []
    for t in tags:
        t = check_word("tag", t)
        if t not in out:
            out.append(t)
    return out


def some_of(names: list[str], most: int = 5) -> str:
    """The first ``most`` of ``names`` (sorted), then how many more: what an error shows of a
    long list of files."""
    shown = ", ".join(sorted(names)[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def whole_number(text: str) -> int | None:
    """``text`` as an int when it is 1 to 18 ASCII digits, else None.

    ``str.isdigit`` also accepts '²' and strings too long for ``int``, which then raises.
    """
    return int(text) if _WHOLE.match(text) else None


def new_session_id() -> str:
    return str(uuid.uuid4())


def slugify(name: str) -> str:
    slug = _SLUG.sub("-", name.lower()).strip("-")[:40].strip("-")
    return slug or "session"


_second: list = [None, ""]


def now() -> str:
    """RFC 3339 UTC with microseconds, so records made within a second still order."""
    ns = time.time_ns()
    sec, micro = divmod(ns // 1000, 1_000_000)
    if _second[0] != sec:  # formatting the date part once a second keeps stores cheap
        _second[0], _second[1] = sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{_second[1]}.{micro:06d}Z"


def utc_key(text: str) -> str:
    """``text`` as :func:`now` writes times (UTC, six-digit fraction), so that times compare as
    strings in time order. RFC 3339 allows any fraction and any offset (another tool or a hand
    edit wrote them): as written, "10:00:00Z" sorts after "10:00:00.5Z". Text that is no time
    is returned as it is."""
    if len(text) == 27 and text[19] == "." and text[26] == "Z":
        return text  # the common case: written by now()
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return text
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object, what: str) -> float:
    """Epoch seconds from an RFC 3339 string or a number."""
    if isinstance(value, bool):
        raise UsageError(f"invalid {what}: {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise UsageError(
                f"invalid {what}: {value!r} (an RFC 3339 time or epoch seconds)"
            ) from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    raise UsageError(f"invalid {what}: {value!r} (an RFC 3339 time or epoch seconds)")


def jsonable(value: Any, what: str, depth: int = 0) -> Any:
    """``value`` as plain JSON data (Lua strings decoded), or a UsageError naming ``what``."""
    if depth > 64:
        raise UsageError(f"invalid {what}: nested too deeply (more than 64 levels)")
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        seen: dict[str, Any] = {}
        for k, v in value.items():
            key = _json_key(k, what)
            if key in seen:  # (one value would silently replace the other)
                raise UsageError(
                    f"invalid {what}: keys {seen[key]!r} and {k!r} are the same key as text"
                )
            seen[key] = k
            out[key] = jsonable(v, what, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [jsonable(v, what, depth + 1) for v in value]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(
                f"invalid {what}: binary strings cannot be stored here (not UTF-8 text; store "
                "binary content as an artifact)"
            ) from None
    if value is None or isinstance(value, (str, int, float, bool)):
        if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
            raise UsageError(f"invalid {what}: {value} is not a number JSON can hold")
        return value
    raise UsageError(f"invalid {what}: a {type(value).__name__} cannot be stored")


def _json_key(k: Any, what: str) -> str:
    """A mapping's key as JSON spells it: text as it is, ``true``, ``null``, ``1``, ``1.5``."""
    if isinstance(k, str):
        return k
    if isinstance(k, bytes):
        return jsonable(k, what)
    if k is None or isinstance(k, (bool, int, float)):
        import json

        return json.dumps(k)
    raise UsageError(f"invalid {what}: a key must be text or a number, not a {type(k).__name__}")


def created_bounds(q: dict) -> tuple[float | None, float | None]:
    """A query's ``created_after`` and ``created_before`` as epoch seconds (None where absent)."""
    after, before = (
        parse_time(q[key], key) if q.get(key) is not None else None
        for key in ("created_after", "created_before")
    )
    return after, before
