"""Recurrence expansion shared by both halves (python-dateutil under the hood).

Input is RFC 5545 lines as Google sends them (`RRULE:`, `EXRULE:`, `RDATE`, `EXDATE`,
with optional `;TZID=` or `;VALUE=DATE` parameters); the Microsoft half converts a
patternedRecurrence into an RRULE line first. Timed series expand in their own time zone
so wall-clock times survive DST changes, as both providers do; all-day series expand
over naive midnights. Only the requested window is walked.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rruleset, rrulestr

MAX_INSTANCES = 50_000  # guards against absurd rules (FREQ=SECONDLY); a daily series since 1990 fits


class RecurrenceError(ValueError):
    """A recurrence line the expander cannot read."""


def build_ruleset(start: datetime, lines: list[str]) -> rruleset:
    """Turn recurrence lines into a dateutil rruleset anchored at `start`."""
    rset = rruleset()
    rset.rdate(start)  # the start itself is always an occurrence, as in RFC 5545
    for line in lines:
        name, params, value = split_line(line)
        if name in ("RRULE", "EXRULE"):
            rule = parse_rule(value, start)
            if name == "RRULE":
                rset.rrule(rule)
            else:
                rset.exrule(rule)
        elif name in ("RDATE", "EXDATE"):
            for moment in parse_dates(value, params, start):
                (rset.rdate if name == "RDATE" else rset.exdate)(moment)
        else:
            raise RecurrenceError(f"unsupported recurrence line: {line!r}")
    return rset


def split_line(line: str) -> tuple[str, dict[str, str], str]:
    """Split `NAME;P=V;...:VALUE` into its parts."""
    head, sep, value = line.strip().partition(":")
    if not sep:
        raise RecurrenceError(f"malformed recurrence line: {line!r}")
    name, *raw = head.split(";")
    params = dict(p.split("=", 1) for p in raw if "=" in p)
    return name.upper(), {k.upper(): v for k, v in params.items()}, value


def parse_rule(value: str, start: datetime) -> rrule:
    """An RRULE body; UNTIL is coerced to match the start's awareness."""
    parts = []
    for part in value.split(";"):
        key, _, val = part.partition("=")
        if key.upper() == "UNTIL":
            val = coerce_until(val, start)
        parts.append(f"{key}={val}")
    try:
        rule = rrulestr(";".join(parts), dtstart=start, ignoretz=False)
    except (ValueError, TypeError) as exc:
        raise RecurrenceError(str(exc)) from exc
    if not isinstance(rule, rrule):
        raise RecurrenceError(f"not a single rule: {value!r}")
    return rule


def coerce_until(val: str, start: datetime) -> str:
    """dateutil wants a UTC UNTIL for aware starts and a naive one for naive starts."""
    if start.tzinfo is None:
        return val.rstrip("Zz")
    if len(val) == 8:  # a date: the end of that day in the series' zone, in UTC
        day = datetime.strptime(val, "%Y%m%d").replace(tzinfo=start.tzinfo)
        return (day + timedelta(days=1, seconds=-1)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    if not val.upper().endswith("Z"):
        local = datetime.strptime(val, "%Y%m%dT%H%M%S").replace(tzinfo=start.tzinfo)
        return local.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return val


def parse_dates(value: str, params: dict[str, str], start: datetime) -> list[datetime]:
    """RDATE/EXDATE values in the start's frame (same zone, or naive for all-day)."""
    return [parse_moment(v.strip(), params, start) for v in value.split(",") if v.strip()]


def parse_moment(text: str, params: dict[str, str], start: datetime) -> datetime:
    """One RDATE/EXDATE value."""
    try:
        if len(text) == 8 or params.get("VALUE") == "DATE":
            day = datetime.strptime(text[:8], "%Y%m%d")
            moment = day.replace(hour=start.hour, minute=start.minute, second=start.second)
            return moment if start.tzinfo is None else moment.replace(tzinfo=start.tzinfo)
        utc = text.upper().endswith("Z")
        moment = datetime.strptime(text.rstrip("Zz"), "%Y%m%dT%H%M%S")
    except ValueError as exc:
        raise RecurrenceError(f"bad date {text!r}") from exc
    if start.tzinfo is None:
        return moment
    zone = UTC if utc else ZoneInfo(params["TZID"]) if "TZID" in params else start.tzinfo
    return moment.replace(tzinfo=zone).astimezone(start.tzinfo)


def occurrences(
    start: datetime,
    lines: list[str],
    *,
    duration: timedelta,
    window_start: datetime | None,
    window_end: datetime,
) -> Iterator[datetime]:
    """Starts of the occurrences overlapping [window_start, window_end), in order.

    Datetimes must share `start`'s awareness (naive for all-day series).
    """
    rset = build_ruleset(start, lines)
    moments = rset if window_start is None else rset.xafter(window_start - duration)
    for produced, moment in enumerate(moments):
        if moment >= window_end or produced >= MAX_INSTANCES:
            return
        yield moment


def includes(start: datetime, lines: list[str], moment: datetime) -> bool:
    """Whether `moment` is one of the series' occurrences."""
    rset = build_ruleset(start, lines)
    found = rset.after(moment, inc=True)
    return found == moment
