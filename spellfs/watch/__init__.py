"""Noticing hand edits: the watcher, its observer, debounce queue and start-up
catch-up, and the background daemon.

May import: git and below (see tests/test_layers.py). Public names are re-exported
here and imported on first use (:mod:`spellfs.lazy`).
"""

from ..lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "CatchUp": "catchup",
        "DebounceQueue": "debounce",
        "LOG_FILE": "daemon",
        "OverflowAlarm": "observer",
        "PID_FILE": "daemon",
        "RACY_NS": "catchup",
        "Stat": "catchup",
        "StatCache": "catchup",
        "WatchLock": "daemon",
        "Watcher": "watcher",
        "daemon_status": "daemon",
        "hash_path": "catchup",
        "is_editor_temp": "catchup",
        "start_daemon": "daemon",
        "start_observer": "observer",
        "stat_of": "catchup",
        "stop_daemon": "daemon",
    },
)
