"""Model providers (OpenAI-compatible and Anthropic HTTP clients) and the records of
model calls that replay answers from.

May import: store and below (see tests/test_layers.py). Public names are re-exported
here and imported on first use (:mod:`spellfs.lazy`).
"""

from ..lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "CACHE_DIR": "calls",
        "CallLog": "calls",
        "SEARCH": "calls",
        "Client": "providers",
        "KINDS": "providers",
        "Provider": "providers",
        "Recorder": "recorder",
        "artifact_names": "calls",
        "cache_get": "calls",
        "cache_put": "calls",
        "call_count": "calls",
        "calls_rel": "calls",
        "check_room": "calls",
        "compare_calls": "calls",
        "lineage": "calls",
        "load_answer": "calls",
        "next_number": "calls",
        "normalize_request": "providers",
        "pair_calls": "calls",
        "providers_from_config": "providers",
        "read_answer": "calls",
        "read_calls": "calls",
        "read_search": "calls",
        "record_call": "calls",
        "record_search": "calls",
        "replay_sources": "calls",
        "request_hash": "providers",
        "search_hash": "calls",
        "workspace_providers": "providers",
        "summarize": "calls",
        "usage_summary": "calls",
    },
)
