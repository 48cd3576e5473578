"""Times as records carry them: ``utc_key`` puts any RFC 3339 spelling in time order. Artifact
names: a remembered check answers as the first did."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from spellfs import names
from spellfs.errors import UsageError
from spellfs.names import check_artifact_name, now, parse_time, utc_key

_times = st.datetimes(
    min_value=datetime(1971, 1, 2), max_value=datetime(2998, 12, 30), timezones=st.just(None)
).map(lambda d: d.replace(tzinfo=timezone.utc))
_offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timedelta(minutes=m))


def _spell(t: datetime, offset: timedelta, digits: int) -> str:
    """``t`` written as another tool might: in another zone, with 0 to 6 fraction digits."""
    local = t.astimezone(timezone(offset))
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{local.microsecond:06d}"[:digits]
    return text + ("Z" if not offset else local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:])


def _written(t: datetime, digits: int) -> datetime:
    """The instant ``_spell(t, …, digits)`` names: the fraction cut to ``digits`` digits."""
    keep = 10 ** (6 - digits)
    return t.replace(microsecond=t.microsecond // keep * keep)


@given(_times, _offsets, st.integers(0, 6), _times, _offsets, st.integers(0, 6))
def test_keys_compare_as_the_times_do(
    a: datetime, oa: timedelta, da: int, b: datetime, ob: timedelta, db: int
) -> None:
    sa, sb = _spell(a, oa, da), _spell(b, ob, db)
    ta, tb = _written(a, da), _written(b, db)  # exact: a float (parse_time's) loses the last
    assert abs(parse_time(sa, "a") - ta.timestamp()) < 1e-5  # microsecond past the year 2200
    if ta != tb:
        assert (utc_key(sa) < utc_key(sb)) == (ta < tb)
    else:
        assert utc_key(sa) == utc_key(sb)


def test_a_time_written_by_now_is_its_own_key_and_text_that_is_no_time_stays() -> None:
    stamp = now()
    assert utc_key(stamp) is stamp
    assert utc_key("2026-01-01T10:00:00Z") == "2026-01-01T10:00:00.000000Z"
    assert utc_key("2026-01-01T12:00:00+02:00") == "2026-01-01T10:00:00.000000Z"
    assert utc_key("yesterday") == "yesterday"
    assert utc_key("") == ""


def _verdict(name: object) -> str:
    try:
        return "ok " + check_artifact_name(name)
    except UsageError as exc:
        return str(exc)


@given(st.one_of(st.text(max_size=300), st.sampled_from(["a.md", ".x", "a/b", " a", "a\u202e"])))
def test_a_name_checked_again_gets_the_answer_it_got_first(text: str) -> None:
    """Valid names are remembered (``spell add`` checks each name three times): a name's second
    check, and one after the memory is emptied, answer exactly as its first did."""
    first, again = _verdict(text), _verdict(text)
    names._VALID_NAMES.clear()
    assert first == again == _verdict(text)
    raw = text.encode("utf-8", "surrogatepass")  # (bytes are checked as the text they decode to)
    assert _verdict(raw) == ("invalid artifact name: not UTF-8" if _has_surrogate(text) else first)


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


def test_the_memory_of_valid_names_stays_bounded() -> None:
    names._VALID_NAMES.clear()
    for i in range(names._VALID_NAMES_MAX + 10):
        check_artifact_name(f"n{i}.txt")
    assert 0 < len(names._VALID_NAMES) <= names._VALID_NAMES_MAX
    assert _verdict("n5.txt") == "ok n5.txt"  # (forgotten or not, still valid)


@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=80) | st.text(max_size=80))
def test_a_printable_ascii_name_needs_no_pattern_to_be_judged(text: str) -> None:
    """Names and words of printable ASCII skip the patterns (``check_artifact_name``,
    ``check_word``): for them each pattern finds exactly what the shortcut says it would, and a
    character is one byte."""
    if not (text.isascii() and text.isprintable()):
        return
    assert bool(names._BAD_CHARS.search(text)) == ("/" in text or "\\" in text)
    assert not names._SURROGATE.search(text) and not names._LYING.search(text)
    assert len(text.encode("utf-8", "surrogatepass")) == len(text)
