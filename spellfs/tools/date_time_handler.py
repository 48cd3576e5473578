"""``date_time_handler``: now, parse, format, add, diff, convert_timezone, info.

Dates are ISO 8601 (``2024-12-25T10:30:00Z``); results carry ``datetime`` (ISO text),
``timestamp`` (Unix seconds) and ``output``. ``add`` takes ``amount`` and ``unit``
(seconds … weeks); ``diff`` takes ``start``/``end`` (or ``input``/``other``) and answers
``{seconds, minutes, hours, days}``; ``format`` takes a strftime ``format``;
``convert_timezone`` takes ``target_timezone`` (an IANA name).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import UsageError
from .base import Tool, text

__all__ = ["TOOL"]

UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
OPERATIONS = (
    "now",
    "parse",
    "format",
    "add",
    "subtract",
    "diff",
    "difference",
    "convert_timezone",
    "info",
)


def _parse(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"not an ISO 8601 date: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _out(moment: datetime, **extra: Any) -> dict:
    iso = moment.isoformat().replace("+00:00", "Z")
    return {"datetime": iso, "output": iso, "timestamp": int(moment.timestamp()), **extra}


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return timezone.utc if name.upper() == "UTC" else ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone: {name}") from None


def _date_time_handler(params: dict, ctx: Any) -> dict:
    operation = text(params, "operation", default="now")
    if operation == "now":
        moment = datetime.now(timezone.utc)
        if isinstance(params.get("timezone"), str):
            moment = moment.astimezone(_zone(params["timezone"]))
        return {"operation": operation, **_out(moment)}
    if operation not in OPERATIONS:
        raise UsageError(f"unknown operation: {operation} (use {', '.join(OPERATIONS)})")
    if operation in ("diff", "difference"):
        start = _parse(text(params, "start", "input", "date1"))
        end = _parse(text(params, "end", "other", "date2"))
        seconds = (end - start).total_seconds()
        return {
            "operation": operation,
            "seconds": seconds,
            "minutes": seconds / 60,
            "hours": seconds / 3600,
            "days": seconds / 86400,
            "output": seconds,
        }
    moment = _parse(text(params, "input", "date", "datetime"))
    if operation == "parse":
        return {
            "operation": operation,
            **_out(moment),
            "year": moment.year,
            "month": moment.month,
            "day": moment.day,
            "hour": moment.hour,
            "minute": moment.minute,
            "second": moment.second,
        }
    if operation == "format":
        shown = moment.strftime(text(params, "format", default="%Y-%m-%d %H:%M:%S"))
        return {"operation": operation, **_out(moment), "formatted": shown, "output": shown}
    if operation in ("add", "subtract"):
        unit = text(params, "unit", default="days").lower().rstrip("s")
        if unit not in UNITS:
            raise UsageError(f"unknown unit: {unit} (use {', '.join(UNITS)})")
        amount = params.get("amount", 0)
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise UsageError("parameter 'amount' must be a number")
        sign = -1 if operation == "subtract" else 1
        return {
            "operation": operation,
            **_out(moment + sign * timedelta(seconds=amount * UNITS[unit])),
        }
    if operation == "convert_timezone":
        return {
            "operation": operation,
            **_out(moment.astimezone(_zone(text(params, "target_timezone", "timezone")))),
        }
    return {
        "operation": operation,
        **_out(moment),
        "weekday": moment.strftime("%A"),
        "day_of_year": moment.timetuple().tm_yday,
        "is_leap_year": moment.year % 4 == 0 and (moment.year % 100 != 0 or moment.year % 400 == 0),
    }


TOOL = Tool(
    "date_time_handler",
    "Parse, format, shift and compare dates and times",
    _date_time_handler,
    operations=OPERATIONS,
    parameters={
        "input": "an ISO 8601 date",
        "format": "strftime format",
        "amount": "for add",
        "unit": "seconds … weeks",
    },
)
