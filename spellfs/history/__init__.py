"""What a workspace held before: checkpoint trees, checkpoints (save, restore, fork,
log), diffs, run records, replay, and the reachability walk gc and push share.

May import: model and below (see tests/test_layers.py). Public names are re-exported
here and imported on first use (:mod:`spellfs.lazy`).
"""

from ..lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "FULL_EVERY": "tree",
        "Graph": "graph",
        "History": "checkpoints",
        "MARKERS": "runs",
        "PAGE_SEQS": "tree",
        "REPLAY_DIR": "worlds",
        "ROOTS": "reach",
        "Run": "runs",
        "Snapshot": "tree",
        "TEXT_DIFF_MAX": "diff",
        "TreeStore": "tree",
        "begin_run": "runs",
        "build_world": "worlds",
        "can_replay": "replayable",
        "canonical": "tree",
        "checkpoint_ref": "checkpoint_log",
        "children_of": "graph",
        "diff_snapshots": "diff",
        "family": "graph",
        "history_graph": "graph",
        "lineage_table": "graph",
        "list_replayable": "replayable",
        "reachable": "reach",
        "ref_of": "checkpoint_log",
        "layout": "graphtext",
        "node_label": "graphtext",
        "render_graph": "graphtext",
        "read_runs": "runs",
        "replay": "replays",
        "replay_metadata": "replayable",
        "same_content": "tree",
        "session_dirs": "reach",
        "starting_point": "runs",
        "sweep_worlds": "worlds",
    },
)
