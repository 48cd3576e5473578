"""Workflows: sequential, parallel, conditional and loop runs of tool, agent and workflow
steps (:mod:`.engine`), and their record in a session (:mod:`.record`).

May import: tools and below (see tests/test_layers.py). Public names are re-exported
here and imported on first use (:mod:`spellfs.lazy`).
"""

from ..lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "KINDS": "engine",
        "Spec": "engine",
        "Step": "engine",
        "artifact_name": "record",
        "execute": "engine",
        "parse_spec": "engine",
        "record_run": "record",
        "step_text": "engine",
    },
)
