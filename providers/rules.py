"""The provider-neutral busy policy: which events block a resource's time, and exactly when.

Pure functions only: no I/O, no clock, no logging. Both providers' mappings produce
`ProviderEvent`s and this module is the one place that turns them into busy intervals.

The table (each kind can be switched per company and per resource via `BusyPolicy`):

    kind               default  an event is of this kind when
    tentative          blocks   show-as tentative, event tentative, or owner answered "maybe"
    declined           free     the calendar owner declined it (decided before show-as)
    all_day            blocks   it is an all-day event (then its show-as still applies)
    oof                blocks   show-as out-of-office
    working_elsewhere  free     show-as working elsewhere
    free               free     show-as free / Google transparency transparent

Removed or cancelled events and events calsync wrote itself never block.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import msgspec

from providers.base import ProviderEvent, Quarantined, ShowAs, Window


@dataclass(frozen=True, slots=True)
class BusyPolicy:
    """Which kinds of event block time (see the module table)."""

    tentative: bool = True
    declined: bool = False
    all_day: bool = True
    oof: bool = True
    working_elsewhere: bool = False
    free: bool = False


class BusyInterval(msgspec.Struct, frozen=True):  # per event: a Struct, as ProviderEvent
    """A span of busy time in UTC, and the rule that made it busy."""

    event_id: str
    start: datetime
    end: datetime
    all_day: bool
    show_as: ShowAs
    rule: str


DEFAULT_POLICY = BusyPolicy()


def to_busy(event: ProviderEvent, *, resource_tz: ZoneInfo, window: Window, policy: BusyPolicy) -> BusyInterval | None:
    """The busy interval `event` contributes inside `window`, or None if it blocks nothing."""
    if event.removed or event.status == "cancelled" or event.appointment_tag:
        return None
    rule = busy_rule(event, policy)
    if rule is None:
        return None
    span = event_span(event, resource_tz)
    if span is None:
        return None
    clipped = clip(span, window)
    if clipped is None:
        return None
    return BusyInterval(event.id, clipped[0], clipped[1], event.all_day, event.show_as, rule)


def busy_rule(event: ProviderEvent, policy: BusyPolicy) -> str | None:
    """The name of the rule under which `event` blocks time, or None if it does not."""
    if event.self_response == "declined":
        return "declined" if policy.declined else None
    if event.all_day and not policy.all_day:
        return None
    rule = _show_as_rule(event)
    # Every rule but "busy" names a BusyPolicy switch; plain busy always blocks.
    if not getattr(policy, rule, True):
        return None
    if rule == "busy" and event.all_day:
        return "all_day"
    return rule


def _show_as_rule(event: ProviderEvent) -> str:
    """Classify by show-as; "unknown" counts as busy because over-blocking is the safe error."""
    show_as = event.show_as
    if show_as in ("free", "oof", "working_elsewhere"):
        return show_as
    if show_as == "tentative" or event.status == "tentative" or event.self_response == "tentative":
        return "tentative"
    return "busy"


def event_span(event: ProviderEvent, resource_tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The event's [start, end) in UTC; all-day dates become midnights in `resource_tz`."""
    start, end = event.start, event.end
    if start is None or end is None:
        return None
    utc_start, utc_end = _to_utc(start, resource_tz), _to_utc(end, resource_tz)
    if utc_end <= utc_start:
        return None
    return utc_start, utc_end


def _to_utc(value: datetime | date, tz: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    # zoneinfo resolves each date's own offset, so days when clocks change are 23 or 25 hours.
    return datetime.combine(value, time(), tzinfo=tz).astimezone(UTC)


def clip(span: tuple[datetime, datetime], window: Window) -> tuple[datetime, datetime] | None:
    """`span` (UTC) cut to `window`, or None when they do not overlap. Aware datetimes compare
    as instants whatever their zone, so only a bound that does cut is converted to UTC."""
    start, end = span
    if start < window.start:
        start = window.start.astimezone(UTC)
    if end > window.end:
        end = window.end.astimezone(UTC)
    return (start, end) if end > start else None


def quarantined_busy(item: Quarantined, *, window: Window) -> BusyInterval | None:
    """An unparseable event still blocks its known bounds (inside the window)."""
    if item.bounds is None:
        return None
    clipped = clip((item.bounds[0].astimezone(UTC), item.bounds[1].astimezone(UTC)), window)
    if clipped is None:
        return None
    return BusyInterval(item.id, clipped[0], clipped[1], False, "unknown", "quarantined")
