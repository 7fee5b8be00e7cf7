"""Busy and free time: pure interval arithmetic over a query range (no I/O, no clock).

Busy rows (external events and confirmed appointments) are clipped to the range, sorted
and merged: overlapping *and* touching intervals become one block that remembers every
source. Free time is the complement of the blocks inside the range, optionally only the
gaps at least `min_length` long. All instants are aware UTC datetimes; the resource's
zone matters only when a query names a local date or a local wall-clock time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo


class RangeError(ValueError):
    """A query range that cannot be answered (unparseable, empty, reversed or too long)."""


class Source(NamedTuple):
    """Why time is busy: one unavailability row (with its calendar) or one appointment."""

    kind: str  # "unavailability" | "appointment"
    id: int | str
    link_id: int | None = None
    calendar_id: str | None = None
    provider: str | None = None


# Named tuples, not dataclasses: an answer builds thousands of these, and tuples are cheap.
class Interval(NamedTuple):
    start: datetime
    end: datetime


class Busy(NamedTuple):
    """A merged busy block and every source that contributes to it."""

    start: datetime
    end: datetime
    sources: tuple[Source, ...]


def merge_busy(items: Iterable[tuple[datetime, datetime, Source]], start: datetime, end: datetime) -> list[Busy]:
    """Clip items to [start, end), then merge overlapping and adjacent ones, sorted by start."""
    clipped = sorted(
        ((max(s, start), min(e, end), src) for s, e, src in items if s < end and e > start and s < e),
        key=_by_start,
    )
    blocks: list[Busy] = []
    if not clipped:
        return blocks
    cur_start, cur_end, sources = clipped[0][0], clipped[0][1], [clipped[0][2]]
    for s, e, src in clipped[1:]:
        if s <= cur_end:  # overlapping or touching: one block
            cur_end = max(cur_end, e)
            sources.append(src)
            continue
        blocks.append(Busy(cur_start, cur_end, tuple(sources)))
        cur_start, cur_end, sources = s, e, [src]
    blocks.append(Busy(cur_start, cur_end, tuple(sources)))
    return blocks


def _by_start(item: tuple[datetime, datetime, Source]) -> tuple[datetime, datetime]:
    return item[0], item[1]


def free_between(
    busy: Iterable[Busy | Interval], start: datetime, end: datetime, min_length: timedelta | None = None
) -> list[Interval]:
    """The gaps of [start, end) between sorted disjoint busy blocks, each at least min_length."""
    gaps: list[Interval] = []
    cursor = start
    for block in busy:
        if block.start > cursor:
            gaps.append(Interval(cursor, block.start))
        cursor = max(cursor, block.end)
    if cursor < end:
        gaps.append(Interval(cursor, end))
    if min_length is None:
        return gaps
    return [g for g in gaps if g.end - g.start >= min_length]


def parse_instant(text: str, zone: ZoneInfo) -> datetime:
    """An ISO date (local midnight) or datetime (local wall time when it has no offset), in UTC."""
    # A wall time inside a spring-forward gap (fold=0) resolves with the pre-gap offset,
    # which lands just after the gap: where the local day really resumes.
    return _as_written(text, zone).astimezone(UTC)


def _as_written(text: str, zone: ZoneInfo) -> datetime:
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=zone)
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
    except ValueError:
        raise RangeError(f"{text!r} is not an ISO date or datetime") from None


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def resolve_range(start_text: str, end_text: str, zone: ZoneInfo, *, max_days: int) -> Interval:
    """The query range in UTC; end after start and at most max_days long."""
    start_local, end_local = _as_written(start_text, zone), _as_written(end_text, zone)
    start, end = start_local.astimezone(UTC), end_local.astimezone(UTC)
    if end <= start:
        raise RangeError("endDate must be after startDate")
    # Measured on the wall clock as asked: a local day is one day even when clocks change
    # (23 or 25 hours), and even when its closing midnight falls in a gap (Santiago).
    if _wall(end_local, zone) - _wall(start_local, zone) > timedelta(days=max_days):
        raise RangeError(f"the range may cover at most {max_days} days")
    return Interval(start, end)
