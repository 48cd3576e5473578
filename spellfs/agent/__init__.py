"""Model providers (:mod:`.providers`) and their HTTP client (:mod:`.client`, :mod:`.wire`,
:mod:`.request`: OpenAI-compatible and Anthropic), the records of
model calls that replay answers from (:mod:`.calls`), and what reads them: usage,
the answer cache, replay lineage and call-by-call comparison.

May import: store and below (see tests/test_layers.py). Public names are re-exported
here and imported on first use (:mod:`spellfs.lazy`).
"""

from ..lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "CACHE_DIR": "cache",
        "CallLog": "calls",
        "SEARCH": "calls",
        "Client": "client",
        "KINDS": "providers",
        "Provider": "providers",
        "Recorder": "recorder",
        "artifact_names": "calls",
        "cache_get": "cache",
        "cache_put": "cache",
        "call_count": "calls",
        "calls_rel": "calls",
        "check_room": "calls",
        "compare_calls": "comparison",
        "lineage": "lineage",
        "load_answer": "calls",
        "next_number": "calls",
        "normalize_request": "request",
        "pair_calls": "comparison",
        "providers_from_config": "providers",
        "read_answer": "calls",
        "read_calls": "calls",
        "read_search": "calls",
        "record_call": "calls",
        "record_search": "calls",
        "replay_sources": "lineage",
        "request_hash": "request",
        "search_hash": "calls",
        "workspace_providers": "providers",
        "summarize": "usage",
        "usage_summary": "usage",
    },
)
