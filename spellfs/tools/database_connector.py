"""``database_connector`` (``database-connector``): SQL on SQLite databases.

``{operation = "query" | "execute", query, params = {…}, connection_string}`` with
``connection_string`` ``":memory:"`` (a database for this one call) or ``sqlite:///PATH`` /
``PATH``, a file inside the workspace (confined like ``file_operations``). ``query`` ->
``{rows = {{col = value}}, columns, row_count}``; ``execute`` -> ``{rows_affected,
last_insert_id}``. One statement per call. ``provider = "postgresql"`` or ``"mysql"`` is
not supported and says so (spellfs ships no client for them). ``ATTACH`` and ``VACUUM INTO``
are refused: they would open or write files outside the workspace.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..errors import UsageError
from .base import Tool, confine, text

__all__ = ["TOOL"]


def _database(params: dict, ctx: Any) -> dict:
    provider = text(params, "provider", default="sqlite")
    if provider != "sqlite":
        raise UsageError(f"provider not supported: {provider} (spellfs connects to sqlite only)")
    operation = text(params, "operation", default="query")
    if operation not in ("query", "execute"):
        raise UsageError(f"unknown operation: {operation} (use query or execute)")
    sql = text(params, "query", "input")
    args = params.get("params") or []
    if not isinstance(args, list) or not all(
        a is None or isinstance(a, (str, int, float, bool)) for a in args
    ):
        raise UsageError("parameter 'params' must be a list of texts, numbers or booleans")
    where = text(params, "connection_string", "database", default=":memory:")
    if where != ":memory:":
        where = str(confine(ctx, where.removeprefix("sqlite://").removeprefix("/"))[1])
    try:
        db = sqlite3.connect(where, timeout=5)
    except sqlite3.Error as e:
        raise UsageError(f"sqlite: {e}") from None
    try:
        db.set_authorizer(_outside_refused)
        with db:
            cursor = db.execute(sql, args)
            if operation == "query":
                columns = [d[0] for d in cursor.description or ()]
                rows = [dict(zip(columns, r)) for r in cursor.fetchmany(10_000)]
                return {"rows": rows, "columns": columns, "row_count": len(rows)}
            return {"rows_affected": cursor.rowcount, "last_insert_id": cursor.lastrowid}
    except sqlite3.Error as e:
        raise UsageError(f"sqlite: {e}") from None
    finally:
        db.close()


def _outside_refused(action: int, *_: Any) -> int:
    """ATTACH (and VACUUM INTO, which attaches) would reach files outside the workspace."""
    return sqlite3.SQLITE_DENY if action == sqlite3.SQLITE_ATTACH else sqlite3.SQLITE_OK


TOOL = Tool(
    "database_connector",
    "Run SQL on an SQLite database (in memory, or a file in the workspace)",
    _database,
    category="data",
    operations=("query", "execute"),
    parameters={
        "query": "one SQL statement",
        "params": "list of values for ?",
        "connection_string": ":memory: or a file in the workspace",
    },
)
