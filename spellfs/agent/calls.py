"""Model calls as session history: the call records, written and read back.

What is built on the records lives beside this module: :mod:`.usage` (calls and tokens),
:mod:`.cache` (``agents.cache``), :mod:`.lineage` (which sessions answer a replay) and
:mod:`.comparison` (two runs' calls side by side).

Every answered ``agent:invoke`` leaves three things in its session, written in
this order (the record last: it is the commit point, so a killed process or a
failed call leaves no record pointing at nothing)::

    files/<agent>-0001.request.json    artifact, type agent_output: what was asked
    files/<agent>-0001.response.json   artifact, type agent_output: what came back
    calls.yaml                         one record per call, appended

    - {"seq": 1, "agent": "assistant", "call": 1, "provider": "openai", "kind": "openai",
       "model": "gpt-4o-mini", "request_hash": "<blake3>", "request": "<oid>", "response": "<oid>",
       "request_artifact": "assistant-0001.request.json", "response_artifact":
       "assistant-0001.response.json", "source": "live", "latency_ms": 41.7, "input_tokens": 12,
       "output_tokens": 5, "finish_reason": "stop", "run": "<uuid>", "created_at": "…Z"}

``request_hash`` is :func:`spellfs.agent.request.request_hash` (provider kind + the
normalised request; no key, no URL). ``request``/``response`` are the content
hashes of the two artifacts. ``source`` says who answered: ``live`` (the
provider), ``replay`` (a recorded call, under ``spell replay``) or ``cache`` (an
identical earlier request, with ``agents.cache: true``). ``run`` is present when
the call was made by a recorded ``spell run``. Nothing here ever holds an API key.

A ``web_search`` is recorded the same way (:func:`record_search`): artifacts
``web_search-0001.request.json`` (``{tool, provider, query, max_results}``) and
``.response.json`` (the tool's result), and a record with ``kind: search``, the
``provider``, the ``query`` and how many ``results``, no model and no tokens. Under
``spell replay`` it is answered from that record like a model call (no network); a search
the replay cannot answer is recorded with ``source: unanswered`` so the report shows
what the replayed script asked instead.

The response artifact holds exactly what ``invoke`` returned (``text, model,
usage, finish_reason``), so a replay answers a call by reading it back, and
records those same bytes in the fork. Both artifacts are JSON with a key per line
and a message per line, so ``cat`` and ``git diff`` read them; the two are stored
with one append to artifacts.yaml.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from ..errors import LimitExceeded, ReplayError, SpellError
from ..names import now
from ..store import RecordLog, encode_record, load_json

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = [
    "SEARCH",
    "CallLog",
    "artifact_names",
    "call_count",
    "calls_rel",
    "check_room",
    "load_answer",
    "next_number",
    "read_answer",
    "read_calls",
    "read_search",
    "record_call",
    "record_search",
    "search_hash",
]

#: The ``kind`` of a web search's record (a model call's is its provider's kind).
SEARCH = "search"
_encode = json.JSONEncoder(ensure_ascii=False).encode
_NUMBERED = re.compile(r"(.+)-(\d{4,})\.request\.json\Z")


def calls_rel(dir: str) -> str:
    return f"sessions/{dir}/calls.yaml"


class CallLog(RecordLog):
    """One session's ``calls.yaml``, parsed incrementally (only what was appended since)."""

    def __init__(self, ws: "Workspace", dir: str) -> None:
        super().__init__(ws.storage, calls_rel(dir))

    def reset(self) -> None:
        super().reset()
        self.by_hash: dict[str, list[dict]] = {}
        self.max_seq = 0

    def apply(self, rec: dict) -> None:
        self.records.append(rec)
        h = rec.get("request_hash")
        if isinstance(h, str):
            self.by_hash.setdefault(h, []).append(rec)
        seq = rec.get("seq")
        if type(seq) is int and seq > self.max_seq:
            self.max_seq = seq


def read_calls(ws: "Workspace", dir: str) -> list[dict]:
    """The call records of one session, oldest first."""
    return CallLog(ws, dir).refresh().records


def artifact_names(agent: str, number: int) -> tuple[str, str]:
    return f"{agent}-{number:04d}.request.json", f"{agent}-{number:04d}.response.json"


def next_number(ws: "Workspace", dir: str, agent: str, hint: int = 0) -> int:
    """The next free call number of ``agent`` in the session: past every name it ever used there."""
    versions = ws.log(dir).versions
    n = hint + 1
    if n == 1:
        prefix = agent + "-"
        for name in versions:
            if name.startswith(prefix):
                m = _NUMBERED.match(name)
                if m and m.group(1) == agent:
                    n = max(n, int(m.group(2)) + 1)
    while artifact_names(agent, n)[0] in versions:
        n += 1
    return n


def _json_bytes(doc: dict) -> bytes:
    """``doc`` as JSON to read and diff: a key per line, a list item (a message) per line.

    Built from the C encoder's pieces: ``indent=`` takes the pure-Python encoder,
    several times slower and leaving cyclic garbage on every call.
    """
    enc = _encode
    lines = []
    for key, value in doc.items():
        if value.__class__ is list and value:
            items = ",\n    ".join(map(enc, value))
            lines.append(f"  {enc(key)}: [\n    {items}\n  ]")
        else:
            lines.append(f"  {enc(key)}: {enc(value)}")
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode("utf-8")


def record_call(
    ws: "Workspace",
    dir: str,
    log: CallLog,
    *,
    agent: str,
    number: int,
    provider: str,
    kind: str,
    request: dict,
    answer: dict,
    request_hash: str,
    source: str,
    latency_ms: float | None,
    response: bytes | None = None,
) -> dict:
    """Store the request and response artifacts, then append the call record; return the record.

    ``response`` is the response artifact's bytes when they exist already (a replay
    serves the recorded ones, so the fork's artifact is the original's). Runs under
    the session's lock, so ``seq`` and the artifact numbers are unique among
    writers; the record is appended last.
    """
    req_name, resp_name = artifact_names(agent, number)
    model = request["model"]
    meta = {
        "mime_type": "application/json",
        "agent": agent,
        "call": number,
        "model": f"{provider}/{model}",
        "request_hash": request_hash,
    }
    req_doc = {
        "agent": agent,
        "provider": provider,
        "kind": kind,
        **{k: request.get(k) for k in ("model", "system", "messages", "temperature", "max_tokens")},
    }
    usage = answer.get("usage") or {}
    fields: dict[str, Any] = {
        "agent": agent,
        "call": number,
        "provider": provider,
        "kind": kind,
        "model": model,
        "request_hash": request_hash,
    }
    tail = {
        "source": source,
        "latency_ms": None if latency_ms is None else round(latency_ms, 2),
        "input_tokens": int(usage.get("input_tokens") or 0),
        "output_tokens": int(usage.get("output_tokens") or 0),
        "finish_reason": answer.get("finish_reason"),
    }
    return _store_call(
        ws,
        dir,
        log,
        (req_name, resp_name),
        (_json_bytes(req_doc), response if response is not None else _json_bytes(answer)),
        meta,
        fields,
        tail,
    )


def record_search(
    ws: "Workspace",
    dir: str,
    log: CallLog,
    *,
    tool: str,
    number: int,
    request: dict,
    result: dict,
    request_hash: str,
    source: str,
    latency_ms: float | None,
    response: bytes | None = None,
) -> dict:
    """Record one web search as a call (kind ``search``), the way :func:`record_call` records a
    model call; return the record.

    ``request`` is ``{provider, query, max_results}``, ``result`` what the tool answered
    (``{query, provider, results, count}``), or ``{error}`` for a search a replay could not
    answer (``source: unanswered``: the record shows what the replayed script asked). The
    record adds ``query`` and ``results`` (how many) to a model call's fields; no tokens.
    """
    names = artifact_names(tool, number)
    provider = str(request.get("provider"))
    meta = {
        "mime_type": "application/json",
        "agent": tool,
        "call": number,
        "request_hash": request_hash,
    }
    fields: dict[str, Any] = {
        "agent": tool,
        "call": number,
        "provider": provider,
        "kind": SEARCH,
        "request_hash": request_hash,
    }
    found = result.get("results")
    tail = {
        "source": source,
        "latency_ms": None if latency_ms is None else round(latency_ms, 2),
        "query": str(request.get("query", ""))[:500],
        "results": len(found) if isinstance(found, list) else 0,
    }
    req_doc = {"tool": tool, **request}
    return _store_call(
        ws,
        dir,
        log,
        names,
        (_json_bytes(req_doc), response if response is not None else _json_bytes(result)),
        meta,
        fields,
        tail,
    )


def _store_call(
    ws: "Workspace",
    dir: str,
    log: CallLog,
    names: tuple[str, str],
    contents: tuple[bytes, bytes],
    meta: dict,
    fields: dict,
    tail: dict,
) -> dict:
    """Store the two artifacts, then append the record (``seq``, ``fields``, the two artifacts,
    ``tail``, ``run``, ``created_at``) under the session's lock, so ``seq`` and the artifact
    numbers are unique among writers; the record is appended last."""
    req_name, resp_name = names
    with ws.storage.lock(f"s-{dir}"):
        req_id, resp_id = ws.artifacts.store_many(
            dir,
            [
                ("agent_output", req_name, contents[0], meta),
                ("agent_output", resp_name, contents[1], meta),
            ],
        )
        log.refresh()
        rec: dict[str, Any] = {
            "seq": log.max_seq + 1,
            **fields,
            "request": req_id["content_hash"],
            "response": resp_id["content_hash"],
            "request_artifact": req_name,
            "response_artifact": resp_name,
            **tail,
        }
        run = getattr(ws, "run", None)
        if run is not None and getattr(run, "id", None):
            rec["run"] = run.id
        rec["created_at"] = now()
        log.append(encode_record(rec), [rec])
    return rec


def check_room(ws: "Workspace", dir: str) -> None:
    """Refuse before calling a model when the session cannot take two more artifacts."""
    log = ws.log(dir)
    log.refresh()
    limit = ws.config.get("sessions.max_artifacts_per_session")
    if log.live_count + 2 > limit:
        raise LimitExceeded(
            f"too many artifacts in session {dir}: a model call stores two and "
            f"max_artifacts_per_session is {limit} (raise it in spell.yaml, or use a new session)"
        )


def load_answer(ws: "Workspace", rec: dict) -> dict:
    """The answer a call record's response artifact holds."""
    return read_answer(ws, rec)[0]


def read_answer(ws: "Workspace", rec: dict) -> tuple[dict, bytes]:
    """The answer a call record's response artifact holds, and the artifact's bytes."""
    oid = rec.get("response")
    try:
        raw = ws.objects.get(oid)
        data = load_json(raw, f"response {str(oid)[:12]}")
    except (SpellError, ValueError, TypeError) as exc:
        raise ReplayError(
            f"recorded call {rec.get('agent')} #{rec.get('call')}: response {str(oid)[:12]} "
            f"cannot be read ({exc})"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise ReplayError(
            f"recorded call {rec.get('agent')} #{rec.get('call')}: response {str(oid)[:12]} "
            "is not an answer"
        )
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return {
        "text": data["text"],
        "model": data.get("model"),
        "usage": {
            "input_tokens": usage.get("input_tokens", 0),
            "output_tokens": usage.get("output_tokens", 0),
        },
        "finish_reason": data.get("finish_reason"),
    }, raw


def search_hash(request: dict) -> str:
    """BLAKE3 hex naming a search: provider, query and how many results (no URL, no key)."""
    from blake3 import blake3

    canon = json.dumps(
        {"kind": SEARCH, "request": request},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return blake3(canon.encode("utf-8")).hexdigest()


def read_search(ws: "Workspace", rec: dict) -> tuple[dict, bytes]:
    """The result a search record's response artifact holds, and the artifact's bytes."""
    oid = rec.get("response")
    where = f"recorded search {rec.get('agent')} #{rec.get('call')}: response {str(oid)[:12]}"
    try:
        raw = ws.objects.get(oid)
        data = load_json(raw, f"response {str(oid)[:12]}")
    except (SpellError, ValueError, TypeError) as exc:
        raise ReplayError(f"{where} cannot be read ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ReplayError(f"{where} is not a search result")
    return data, raw


def call_count(ws: "Workspace", dir: str) -> int:
    return len(read_calls(ws, dir))
