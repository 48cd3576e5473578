"""Workflows: their definitions (:mod:`.spec`), sequential, parallel, conditional and loop
runs of tool, agent and workflow steps (:mod:`.engine`, with :mod:`.references` for what a
step's input refers to and :mod:`.scheduler` for where its work runs), and their record in
a session (:mod:`.record`).

May import: tools and below (see tests/test_layers.py). Public names are re-exported
here and imported on first use (:mod:`spellfs.lazy`).
"""

from ..lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "KINDS": "spec",
        "Spec": "spec",
        "Step": "spec",
        "artifact_name": "record",
        "execute": "engine",
        "parse_spec": "spec",
        "record_run": "record",
        "step_text": "references",
    },
)
