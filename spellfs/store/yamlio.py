"""YAML in and out through ruamel.yaml (C extension when installed), imported lazily.

Manifests and state files are plain block YAML people edit by hand; loading one
that is broken raises :class:`ManifestError` naming file and line. Timestamps are
kept as the strings they were written as (RFC 3339), never turned into datetimes.
"""

from __future__ import annotations

import datetime
import io
import threading
from typing import Any

from ..errors import ManifestError

__all__ = ["dump_yaml", "dump_yaml_rt", "load_yaml", "load_yaml_rt"]

_local = threading.local()  # ruamel.yaml's YAML() keeps emitter state: one per thread
MAX_YAML_BYTES = 16 << 20


def _get():
    """This thread's YAML(): ruamel.yaml documents one instance per thread, and a shared
    one fails under concurrent dumps with EmitterError."""
    y = getattr(_local, "yaml", None)
    if y is None:
        from ruamel.yaml import YAML

        y = YAML(typ="safe")
        y.default_flow_style = False
        y.sort_base_mapping_type_on_output = False  # type: ignore[assignment]  # ruamel declares it None
        y.allow_unicode = True
        y.width = 4096
        _local.yaml = y
    return y


def _get_rt():
    """This thread's round-trip YAML(): comments, key order and quoting of what it loaded are
    written back as they were (for files people edit that spellfs rewrites); ``null`` stays
    ``null``, as the safe dumper writes it."""
    y = getattr(_local, "rt", None)
    if y is None:
        from ruamel.yaml import YAML

        y = YAML()
        y.default_flow_style = False
        y.preserve_quotes = True
        y.allow_unicode = True
        y.width = 4096
        y.representer.add_representer(
            type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null")
        )
        y.representer.add_representer(str, _represent_str)
        _local.rt = y
    return y


def _represent_str(r: Any, data: str) -> Any:
    """A string for the round-trip writer: one holding a NEL (U+0085) double-quoted, where it
    is escaped (``\\N``); its pure-Python emitter writes it raw inside single quotes, where a
    reader takes it for a line break and folds it to a space (the safe writer escapes it)."""
    if "\x85" in data:
        return r.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return r.represent_str(data)


MAX_NODES = 1_000_000


def _plain(value: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """Plain Python values; aliases are expanded, so a YAML bomb hits the node budget."""
    if budget is None:
        budget = [MAX_NODES]
    budget[0] -= 1
    if depth > 100:
        raise ValueError("nested too deeply")
    if budget[0] < 0:
        raise ValueError(f"more than {MAX_NODES} values (aliases expanded)")
    if isinstance(value, dict):
        return {_key(k): _plain(v, depth + 1, budget) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, depth + 1, budget) for v in value]
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return (
            value.astimezone(datetime.timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            .replace(".000000Z", "Z")
        )
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def _key(k: Any) -> Any:
    """A mapping key as a plain value: text and integers (true and false too) as they are; a
    fraction, null or a date as text (JSON's spelling: sorted JSON cannot mix them with text);
    a key that is a list, a mapping or binary is refused (it has no spelling in JSON)."""
    if isinstance(k, (str, int)):
        return k
    if k is None:
        return "null"
    if isinstance(k, float):
        return str(k)
    if isinstance(k, datetime.date):
        return _plain(k)
    raise ValueError(f"a mapping key must be text, a number or a date, not {type(k).__name__}")


def _check_depth(text: str, where: str, first_line: int) -> None:
    """Refuse nesting deeper than MAX_DEPTH before the loader recurses into it.

    The C composer recurses once per level without a guard: 50,000 ``[`` end the
    process with SIGSEGV. The event stream is flat, so counting collection starts
    and ends over it is safe, and costs a fraction of the load. Only text with more
    than MAX_DEPTH of the tokens that open a level (``[``, ``{``, ``- ``, ``? ``,
    ``: ``, a line break) can nest that deep, so small files skip the scan.
    """
    from .jsonio import MAX_DEPTH

    openers = (
        text.count("[")
        + text.count("{")
        + text.count("- ")
        + text.count("? ")
        + text.count(": ")
        + text.count("\n")
        + text.count(":\n")
    )
    if openers <= MAX_DEPTH:
        return
    from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent

    depth = 0
    for event in _get().parse(text):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + first_line
                raise ManifestError(
                    f"{where}:{line}: nested deeper than {MAX_DEPTH} levels (refused)"
                )
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def load_yaml(text: str | bytes, where: str, first_line: int = 1) -> Any:
    """Parse YAML; errors name ``where`` and the line."""
    doc = _load(text, where, first_line, _get())
    try:
        return _plain(doc)
    except (ValueError, RecursionError) as exc:
        raise ManifestError(f"{where}: refused: {exc}") from None


def check_loadable(values: Any, where: str) -> None:
    """Refuse plain ``values`` that :func:`load_yaml` would refuse once written (too many values,
    nested too deeply): a file is never written that its reader cannot read back."""
    try:
        _plain(values)
    except (ValueError, RecursionError) as exc:
        raise ManifestError(f"{where}: refused: {exc}") from None


def load_yaml_rt(text: str | bytes, where: str) -> Any:
    """Parse YAML keeping its comments and layout (ruamel's round-trip types: a mapping is a
    ``CommentedMap``), to change a few values and write it back with :func:`dump_yaml_rt`.
    The same limits and errors as :func:`load_yaml`; aliases are kept, not expanded."""
    return _load(text, where, 1, _get_rt())


def _load(text: str | bytes, where: str, first_line: int, y: Any) -> Any:
    if len(text) > MAX_YAML_BYTES:
        raise ManifestError(f"{where}: file too large ({len(text)} bytes, limit {MAX_YAML_BYTES})")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(f"{where}: not UTF-8 (byte {exc.start})") from None
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        _check_depth(text, where, first_line)
        doc = y.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + first_line}" if mark is not None else ""
        raise ManifestError(f"{where}{line}: invalid YAML: {exc.problem or exc.context}") from None
    except (YAMLError, RecursionError, ValueError) as exc:
        raise ManifestError(
            f"{where}: invalid YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    return doc


def dump_yaml(data: Any) -> bytes:
    buf = io.StringIO()
    _get().dump(data, buf)
    return buf.getvalue().encode("utf-8")


def dump_yaml_rt(doc: Any) -> bytes:
    """Write a document :func:`load_yaml_rt` read (and the caller changed) back, comments kept."""
    buf = io.StringIO()
    _get_rt().dump(doc, buf)
    return buf.getvalue().encode("utf-8")
