"""Keeping a workspace sound: `fsck` finds problems, `repair` fixes what it can,
`gc` removes objects nothing reaches.

May import: remote and below (see tests/test_layers.py). Public names are re-exported
here and imported on first use (:mod:`spellfs.lazy`).
"""

from ..lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "GRACE_SECONDS": "garbage",
        "GcReport": "garbage",
        "Problem": "checks",
        "RECORD_FILES": "checks",
        "Report": "checks",
        "fsck": "checks",
        "gc": "garbage",
        "repair": "repairs",
    },
)
