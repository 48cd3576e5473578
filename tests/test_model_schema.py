"""Every field of every record file is checked where records are read (model/schema.py): a
hand edit, a merge or a hostile clone gets one exact message naming the field, never a crash
further on. Each check is tried with what it must accept and what it must refuse."""

from __future__ import annotations

import pytest

from spellfs.model.schema import record_problem

OID = "ab" * 32
AT = "2026-11-29T10:00:00Z"
ART = {"seq": 1, "name": "a.txt", "hash": OID, "size": 3, "created_at": AT}
CP = {"number": 1, "tree": OID}
CALL = {"agent": "a", "call": 1, "request": OID, "response": OID}
RUN = {"run": "r1", "script_hash": OID}


@pytest.mark.parametrize(
    "file, rec, problem",
    [
        ("artifacts.yaml", ART, None),
        ("artifacts.yaml", {**ART, "seq": True}, "seq: 'True' is not an integer"),
        ("artifacts.yaml", {**ART, "seq": -3}, None),  # an integer, any sign
        ("artifacts.yaml", {**ART, "size": -1}, "size: '-1' is not a non-negative integer"),
        ("artifacts.yaml", {**ART, "size": False}, "size: 'False' is not a non-negative integer"),
        ("artifacts.yaml", {**ART, "size": 0}, None),
        (
            "artifacts.yaml",
            {**ART, "tags": ["x", 1]},
            "tags: \"['x', 1]\" is not a list of strings",
        ),
        ("artifacts.yaml", {**ART, "tags": "x"}, "tags: 'x' is not a list of strings"),
        ("artifacts.yaml", {**ART, "tags": []}, None),
        ("artifacts.yaml", {**ART, "compressed": 1}, "compressed: '1' is not true or false"),
        (
            "artifacts.yaml",
            {**ART, "hash": "AB" * 32},
            f"hash: {('AB' * 32)[:40]!r} is not a 64-hex object id",
        ),
        ("artifacts.yaml", {k: v for k, v in ART.items() if k != "hash"}, "hash: missing"),
        (
            "artifacts.yaml",
            {"seq": 2, "name": "a.txt", "op": "delete", "created_at": AT},
            None,  # a deletion has no hash or size
        ),
        ("checkpoints.yaml", {**CP, "parent": None}, None),
        ("checkpoints.yaml", {**CP, "parent": 0}, None),
        ("checkpoints.yaml", {**CP, "parent": -1}, "parent: '-1' is not valid"),
        ("checkpoints.yaml", {**CP, "parent": "1"}, "parent: '1' is not valid"),
        ("calls.yaml", {**CALL, "latency_ms": None}, None),
        ("calls.yaml", {**CALL, "latency_ms": 1.5}, None),
        ("calls.yaml", {**CALL, "latency_ms": 7}, None),
        ("calls.yaml", {**CALL, "latency_ms": True}, "latency_ms: 'True' is not a number"),
        ("calls.yaml", {**CALL, "latency_ms": "fast"}, "latency_ms: 'fast' is not a number"),
        ("calls.yaml", {**CALL, "finish_reason": None}, None),
        ("calls.yaml", {**CALL, "finish_reason": 5}, "finish_reason: '5' is not valid"),
        ("runs.yaml", {**RUN, "checkpoint": None, "artifacts": []}, None),
        ("runs.yaml", {**RUN, "artifacts": {}}, "artifacts: '{}' is not valid"),
        ("state.yaml", {"anything": object()}, None),  # a file with no schema here
    ],
)
def test_each_field_is_accepted_or_refused_by_name(file: str, rec: dict, problem) -> None:
    assert record_problem(file, rec) == problem


def test_a_long_wrong_value_is_shown_cut_at_40_characters() -> None:
    value = ["t"] * 30 + [0]
    assert record_problem("artifacts.yaml", {**ART, "tags": value}) == (
        f"tags: {str(value)[:40]!r} is not a list of strings"
    )
    assert len(str(value)[:40]) == 40 and len(str(value)) > 41
