"""``environment_reader`` (a machine tool, off by default): read environment variables.

``get``/``read`` ``{variable_name}`` -> ``{name, value, exists}``; ``list``/``get_all``
``{pattern?}`` (a glob such as ``SHELL*``, or ``filter`` as ``A|B|C``) -> ``{variables,
count}``. Variables whose names suggest secrets (KEY, TOKEN, SECRET, PASSWORD,
CREDENTIAL) are never shown: listed as ``[hidden]`` and refused by ``get``.
"""

from __future__ import annotations

import fnmatch
import os
import re
from typing import Any

from ..errors import UsageError
from .base import Tool, text

__all__ = ["TOOL"]

_SECRET = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH", re.I)


def _environment_reader(params: dict, ctx: Any) -> dict:
    operation = text(params, "operation", default="get")
    if operation in ("get", "read"):
        name = text(params, "variable_name", "name", "variable")
        if _SECRET.search(name):
            raise UsageError(f"refused: {name} looks like a secret")
        value = os.environ.get(name)
        return {"operation": operation, "name": name, "value": value, "exists": value is not None}
    if operation in ("list", "get_all"):
        pattern = params.get("pattern")
        wanted = params.get("filter")
        found = {}
        for name, value in sorted(os.environ.items()):
            if isinstance(pattern, str) and not fnmatch.fnmatchcase(name, pattern):
                continue
            if isinstance(wanted, str) and name not in wanted.split("|"):
                continue
            found[name] = "[hidden]" if _SECRET.search(name) else value
        return {"operation": operation, "variables": found, "count": len(found)}
    raise UsageError(f"unknown operation: {operation} (use get or list)")


TOOL = Tool(
    "environment_reader",
    "Read environment variables (secrets hidden)",
    _environment_reader,
    category="system",
    machine=True,
    operations=("get", "list"),
    parameters={"variable_name": "for get", "pattern": "glob for list"},
)
