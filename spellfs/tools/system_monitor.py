"""``system_monitor`` (a machine tool, off by default): CPU load, memory, disk of the host.

``{operation = "get_metrics"|"all"|"get_all"|"cpu"|"memory"|"disk"|"info"}`` -> the
matching ``{cpu = {load_1m, load_5m, load_15m, count}, memory = {total_bytes,
available_bytes, used_percent}, disk = {total_bytes, free_bytes, used_percent}}``
(read from the standard library and /proc; missing pieces are left out).
"""

from __future__ import annotations

import os
import platform
import shutil
from typing import Any

from ..errors import UsageError
from .base import Tool, text

__all__ = ["TOOL"]


def _cpu() -> dict:
    one, five, fifteen = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"load_1m": one, "load_5m": five, "load_15m": fifteen, "count": os.cpu_count() or 1}


def _memory() -> dict:
    info: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                info[key] = int(rest.split()[0]) * 1024
    except OSError:
        return {}
    total, available = info.get("MemTotal", 0), info.get("MemAvailable", 0)
    used = 100.0 * (total - available) / total if total else 0.0
    return {"total_bytes": total, "available_bytes": available, "used_percent": used}


def _disk(ctx: Any) -> dict:
    usage = shutil.disk_usage(getattr(ctx, "root", None) or ".")
    return {
        "total_bytes": usage.total,
        "free_bytes": usage.free,
        "used_percent": 100.0 * usage.used / usage.total if usage.total else 0.0,
    }


def _system_monitor(params: dict, ctx: Any) -> dict:
    operation = text(params, "operation", default="get_metrics")
    parts = {"cpu": _cpu, "memory": _memory, "disk": lambda: _disk(ctx)}
    if operation in parts:
        return {"operation": operation, operation: parts[operation]()}
    if operation in ("get_metrics", "all", "get_all", "info", "stats"):
        return {
            "operation": operation,
            **{k: f() for k, f in parts.items()},
            "system": {
                "os": platform.system(),
                "release": platform.release(),
                "hostname": platform.node(),
            },
        }
    raise UsageError(f"unknown operation: {operation} (use get_metrics, cpu, memory or disk)")


TOOL = Tool(
    "system_monitor",
    "CPU load, memory and disk of the host",
    _system_monitor,
    category="system",
    machine=True,
    operations=("get_metrics", "cpu", "memory", "disk"),
)
