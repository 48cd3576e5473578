"""``csv_analyzer``: analyze, parse (``to_json``), filter and stats over CSV text.

``{operation, input (CSV text), delimiter = ","}``: ``analyze``/``stats`` -> ``{rows,
columns, column_names, column_types, statistics = {column = {min, max, mean, count}}}``;
``parse``/``to_json`` -> ``{data = {{column = value}}, rows, output}`` (numbers
converted); ``filter`` takes ``column``, ``value`` (equality) -> ``{data, rows}``.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from ..errors import UsageError
from .base import Tool, text

__all__ = ["TOOL"]


def _cell(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _rows(params: dict) -> tuple[list[str], list[dict]]:
    source = text(params, "input", "content", "data")
    reader = csv.DictReader(
        io.StringIO(source.strip()), delimiter=text(params, "delimiter", default=",")
    )
    rows = [{k: _cell(v or "") for k, v in row.items() if k is not None} for row in reader]
    return list(reader.fieldnames or []), rows


def _csv_analyzer(params: dict, ctx: Any) -> dict:
    operation = text(params, "operation", default="analyze")
    names, rows = _rows(params)
    if operation in ("parse", "to_json"):
        return {"operation": operation, "data": rows, "output": rows, "rows": len(rows)}
    if operation == "filter":
        column = text(params, "column")
        if column not in names:
            raise UsageError(f"no column {column!r} (columns: {', '.join(names)})")
        want = params.get("value")
        kept = [r for r in rows if r.get(column) == want]
        return {"operation": operation, "data": kept, "output": kept, "rows": len(kept)}
    if operation not in ("analyze", "stats", "statistics"):
        raise UsageError(
            f"unknown operation: {operation} (use analyze, parse, to_json, filter, stats)"
        )
    types, stats = {}, {}
    for name in names:
        values = [r[name] for r in rows if r.get(name) != ""]
        numbers = [v for v in values if isinstance(v, (int, float))]
        types[name] = "number" if values and len(numbers) == len(values) else "string"
        entry: dict[str, Any] = {"count": len(values), "unique": len({str(v) for v in values})}
        if numbers and types[name] == "number":
            entry.update(
                min=min(numbers),
                max=max(numbers),
                sum=sum(numbers),
                mean=sum(numbers) / len(numbers),
            )
        stats[name] = entry
    return {
        "operation": operation,
        "rows": len(rows),
        "columns": len(names),
        "column_names": names,
        "column_types": types,
        "statistics": stats,
    }


TOOL = Tool(
    "csv_analyzer",
    "Analyze, parse and filter CSV data",
    _csv_analyzer,
    category="data",
    operations=("analyze", "parse", "to_json", "filter", "stats"),
    parameters={"input": "CSV text", "delimiter": "field separator"},
)
