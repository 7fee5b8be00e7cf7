"""Recurring series: a master's instances as Google presents them (no HTTP, no storage).

An instance id is `<master id>_<suffix>` where the suffix is the original start
(`YYYYMMDDTHHMMSSZ` in UTC, or `YYYYMMDD` for all-day series). Instances are generated
on demand as `Record`s that share the master's ordinal, so a listing sorts a series'
instances together and an edit of one turns it into a stored exception.
See https://developers.google.com/workspace/calendar/api/concepts/events-calendars#recurring_events
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from providers.sandbox import recurrence
from providers.sandbox.google import events as ev

if TYPE_CHECKING:
    from providers.sandbox.google.state import Record

NOT_COPIED = {"recurrence", "id", "start", "end"}


def anchor(master: Record, cal_zone: tzinfo) -> datetime:
    """The series start in its expansion frame: its own zone, or naive for all-day."""
    if master.span.all_day:
        return master.span.start.astimezone(cal_zone).replace(tzinfo=None)
    return master.span.start.astimezone(ZoneInfo(master.body["start"].get("timeZone", "UTC")))


def to_frame(moment: datetime, master: Record, cal_zone: tzinfo) -> datetime:
    """A UTC window bound in the series' expansion frame."""
    if master.span.all_day:
        return moment.astimezone(cal_zone).replace(tzinfo=None)
    return moment


def suffix_of(local: datetime, all_day: bool) -> str:
    """The instance-id suffix for an occurrence start in the expansion frame."""
    return ev.instance_suffix(local, all_day)


def edt(local: datetime, master: Record) -> dict[str, Any]:
    """The stored EventDateTime of an occurrence boundary."""
    if master.span.all_day:
        return {"date": local.date().isoformat()}
    out = {"dateTime": local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if "timeZone" in master.body["start"]:
        out["timeZone"] = master.body["start"]["timeZone"]
    return out


def make_instance(master: Record, local: datetime, cal_zone: tzinfo) -> Record:
    """The unmodified instance of `master` starting at `local`."""
    from providers.sandbox.google.state import Record

    duration = master.span.end - master.span.start
    body = {k: v for k, v in master.body.items() if k not in NOT_COPIED}
    body["id"] = f"{master.id}_{suffix_of(local, master.span.all_day)}"
    body["recurringEventId"] = master.id
    body["originalStartTime"] = edt(local, master)
    body["start"] = edt(local, master)
    end_local = local + duration
    if master.span.all_day:  # whole days, even across a DST change in the calendar zone
        end_local = local + timedelta(days=round(duration / timedelta(days=1)))
    body["end"] = edt(end_local, master)
    start = local.replace(tzinfo=cal_zone) if master.span.all_day else local
    end = end_local.replace(tzinfo=cal_zone) if master.span.all_day else end_local
    span = ev.Span(start.astimezone(UTC), end.astimezone(UTC), master.span.all_day)
    return Record(body, master.seq, master.ordinal, span)


def expand(master: Record, cal_zone: tzinfo, window_start: datetime | None, window_end: datetime) -> list[Record]:
    """Unmodified instances of a series overlapping the UTC window."""
    start = anchor(master, cal_zone)
    lower = None if window_start is None else to_frame(window_start, master, cal_zone)
    moments = recurrence.occurrences(
        start,
        master.body.get("recurrence", []),
        duration=master.span.end - master.span.start,
        window_start=lower,
        window_end=to_frame(window_end, master, cal_zone),
    )
    return [make_instance(master, moment, cal_zone) for moment in moments]


def parse_suffix(suffix: str, master: Record, cal_zone: tzinfo) -> datetime | None:
    """The occurrence start (expansion frame) an instance-id suffix names."""
    try:
        if master.span.all_day:
            if len(suffix) != 8:
                return None
            day = date(int(suffix[:4]), int(suffix[4:6]), int(suffix[6:8]))
            return datetime(day.year, day.month, day.day)
        moment = datetime.strptime(suffix, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment.astimezone(anchor(master, cal_zone).tzinfo)


def instance_at(master: Record, suffix: str, cal_zone: tzinfo) -> Record | None:
    """The unmodified instance named by `suffix`, if the series has that occurrence."""
    local = parse_suffix(suffix, master, cal_zone)
    if local is None:
        return None
    if not recurrence.includes(anchor(master, cal_zone), master.body.get("recurrence", []), local):
        return None
    return make_instance(master, local, cal_zone)
