"""Graph's patternedRecurrence turned into an RFC 5545 rule, and validated the way Graph does.

https://learn.microsoft.com/graph/api/resources/patternedrecurrence . Occurrences keep the
series' wall-clock start time in its zone; `range.startDate` is the first candidate day
and `range.endDate` is inclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from providers.sandbox.microsoft.errors import GraphError

DAYS = {
    "sunday": "SU",
    "monday": "MO",
    "tuesday": "TU",
    "wednesday": "WE",
    "thursday": "TH",
    "friday": "FR",
    "saturday": "SA",
}
INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
PATTERNS = (
    "daily",
    "weekly",
    "absoluteMonthly",
    "relativeMonthly",
    "absoluteYearly",
    "relativeYearly",
)
RANGES = ("endDate", "noEnd", "numbered")


@dataclass(frozen=True)
class Rule:
    """A series rule: its first candidate start (local wall clock) and RRULE text."""

    dtstart: datetime  # naive, in the series zone
    rrule: str  # e.g. "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE"


def _bad(message: str) -> GraphError:
    return GraphError(400, "ErrorInvalidRequest", message)


def _days(pattern: dict[str, Any]) -> str:
    names = pattern.get("daysOfWeek") or []
    try:
        return ",".join(DAYS[str(name).lower()] for name in names)
    except KeyError as exc:
        raise _bad(f"Invalid daysOfWeek value {exc.args[0]!r}.") from exc


def _freq_parts(pattern: dict[str, Any]) -> list[str]:
    kind = pattern.get("type")
    if kind not in PATTERNS:
        raise _bad(f"Recurrence pattern type {kind!r} is not valid.")
    interval = int(pattern.get("interval") or 1)
    if interval < 1:
        raise _bad("Recurrence pattern interval must be at least 1.")
    parts = [f"INTERVAL={interval}"]
    if kind == "daily":
        return ["FREQ=DAILY", *parts]
    if kind == "weekly":
        days = _days(pattern)
        if not days:
            raise _bad("A weekly recurrence pattern needs daysOfWeek.")
        first = DAYS.get(str(pattern.get("firstDayOfWeek") or "sunday").lower(), "SU")
        return ["FREQ=WEEKLY", *parts, f"BYDAY={days}", f"WKST={first}"]
    freq = "MONTHLY" if kind.endswith("Monthly") else "YEARLY"
    parts.insert(0, f"FREQ={freq}")
    if freq == "YEARLY":
        parts.append(f"BYMONTH={int(pattern.get('month') or 0) or _missing('month')}")
    if kind.startswith("absolute"):
        parts.append(f"BYMONTHDAY={int(pattern.get('dayOfMonth') or 0) or _missing('dayOfMonth')}")
        return parts
    days = _days(pattern) or _missing("daysOfWeek")
    index = INDEX.get(str(pattern.get("index") or "first").lower())
    if index is None:
        raise _bad(f"Invalid recurrence index {pattern.get('index')!r}.")
    return [*parts, f"BYDAY={days}", f"BYSETPOS={index}"]


def _missing(name: str) -> Any:
    raise _bad(f"The recurrence pattern is missing '{name}'.")


def _range_parts(rng: dict[str, Any], start_time: time) -> list[str]:
    kind = rng.get("type")
    if kind not in RANGES:
        raise _bad(f"Recurrence range type {kind!r} is not valid.")
    if kind == "numbered":
        count = int(rng.get("numberOfOccurrences") or 0)
        if count < 1:
            raise _bad("numberOfOccurrences must be at least 1 for a numbered range.")
        return [f"COUNT={count}"]
    if kind == "endDate":
        end = _date(rng.get("endDate"), "endDate")
        # endDate is inclusive: the last occurrence may start any time that day.
        return [f"UNTIL={end.strftime('%Y%m%d')}T235959"]
    return []


def _date(value: Any, name: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise _bad(f"The recurrence range {name} {value!r} is not a valid date.") from exc


def to_rule(recurrence: dict[str, Any], local_start: datetime) -> Rule:
    """Convert a patternedRecurrence to a Rule anchored at the series' local start time."""
    pattern, rng = recurrence.get("pattern"), recurrence.get("range")
    if not isinstance(pattern, dict) or not isinstance(rng, dict):
        raise _bad("A recurrence needs both a pattern and a range.")
    first_day = _date(rng.get("startDate") or local_start.date().isoformat(), "startDate")
    dtstart = datetime.combine(first_day, local_start.time())
    parts = _freq_parts(pattern) + _range_parts(rng, local_start.time())
    return Rule(dtstart=dtstart, rrule=";".join(parts))


def normalise(recurrence: dict[str, Any], local_start: datetime, zone_name: str) -> dict[str, Any]:
    """The recurrence as Graph echoes it: every pattern and range field present."""
    pattern, rng = dict(recurrence["pattern"]), dict(recurrence["range"])
    full_pattern = {
        "type": pattern.get("type"),
        "interval": int(pattern.get("interval") or 1),
        "month": int(pattern.get("month") or 0),
        "dayOfMonth": int(pattern.get("dayOfMonth") or 0),
        "daysOfWeek": [str(day).lower() for day in pattern.get("daysOfWeek") or []],
        "firstDayOfWeek": str(pattern.get("firstDayOfWeek") or "sunday"),
        "index": str(pattern.get("index") or "first"),
    }
    full_range = {
        "type": rng.get("type"),
        "startDate": str(rng.get("startDate") or local_start.date().isoformat()),
        "endDate": str(rng.get("endDate") or "0001-01-01"),
        "recurrenceTimeZone": str(rng.get("recurrenceTimeZone") or zone_name),
        "numberOfOccurrences": int(rng.get("numberOfOccurrences") or 0),
    }
    return {"pattern": full_pattern, "range": full_range}
