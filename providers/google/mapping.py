"""Pure translation between Google Calendar event JSON and calsync's provider-neutral types.

No I/O and no clock. Anything that cannot be read becomes `Quarantined` rather than an
exception, so one bad event never stops its calendar. Field meanings:
https://developers.google.com/workspace/calendar/api/v3/reference/events
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from providers.base import AppointmentBody, ProviderEvent, Response, ShowAs
from providers.google import wire
from providers.google.wire import APPOINTMENT_PROPERTY
from providers.parsing import EventReader

# Fixed namespace so an appointment id always yields the same Google event id.
_ID_NAMESPACE = uuid.UUID("6f1c2a0e-4b7d-5e3a-9c1f-0d8e7a6b5c4d")

_RESPONSES: dict[str, Response] = {
    "accepted": "accepted",
    "declined": "declined",
    "tentative": "tentative",
    "needsAction": "needs_action",
}
# Event types that say more about availability than `transparency` does.
_EVENT_TYPE_SHOW_AS: dict[str, ShowAs] = {
    "outOfOffice": "oof",
    "workingLocation": "working_elsewhere",
}


def event_id_for(appointment_id: str) -> str:
    """The Google event id calsync uses for an appointment: 32 lower-case hex digits.

    Hex is a subset of base32hex, the only alphabet Google accepts for client-chosen ids.
    """
    return uuid.uuid5(_ID_NAMESPACE, appointment_id).hex


def _parse(event_id: str, event: wire.Event) -> ProviderEvent:
    if event.status == "cancelled":
        # Only id (and for instances recurringEventId) is guaranteed on a tombstone.
        return ProviderEvent(
            id=event_id,
            series_id=event.recurringEventId,
            removed=True,
            status="cancelled",
            etag=event.etag,
        )
    if event.recurrence:
        raise ValueError("series master returned unexpanded")
    start, end = event.start, event.end
    if start is None or end is None:
        raise ValueError("event has no start or no end")
    all_day = start.date is not None
    if all_day != (end.date is not None):
        raise ValueError("start and end mix all-day and timed values")
    return ProviderEvent(
        id=event_id,
        series_id=event.recurringEventId,
        status="tentative" if event.status == "tentative" else "confirmed",
        start=_when(start, all_day),
        end=_when(end, all_day),
        all_day=all_day,
        time_zone=start.timeZone,
        show_as=_show_as(event),
        self_response=_self_response(event),
        appointment_tag=_appointment_tag(event),
        etag=event.etag,
        summary=event.summary,
    )


def _when(value: wire.EventDateTime, all_day: bool) -> date | datetime:
    if all_day:
        return date.fromisoformat(value.date or "")
    if value.dateTime is None:
        raise ValueError("timed event without dateTime")
    parsed = datetime.fromisoformat(value.dateTime)
    if parsed.tzinfo is None:
        if not value.timeZone:
            raise ValueError("dateTime without offset or timeZone")
        parsed = parsed.replace(tzinfo=_zone(value.timeZone))
    return parsed


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {name!r}") from exc


def _show_as(event: wire.Event) -> ShowAs:
    by_type = _EVENT_TYPE_SHOW_AS.get(event.eventType or "")
    if by_type is not None:
        return by_type
    if event.transparency == "transparent":
        return "free"
    if event.status == "tentative":
        return "tentative"
    return "busy"


def _self_response(event: wire.Event) -> Response | None:
    for attendee in event.attendees or ():
        if attendee.self:
            return _RESPONSES.get(attendee.responseStatus or "")
    return None


def _appointment_tag(event: wire.Event) -> str | None:
    private = event.extendedProperties.private if event.extendedProperties else None
    tag = (private or {}).get(APPOINTMENT_PROPERTY)
    return tag or None


def _instant_or_none(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else None


def _known_bounds(raw: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    """Best-effort timed bounds of an event that failed to parse, so it can still block."""
    try:
        start = _instant_or_none(raw["start"]["dateTime"])
        end = _instant_or_none(raw["end"]["dateTime"])
    except (KeyError, TypeError):
        return None
    if start is None or end is None or end <= start:
        return None
    return start, end


def _tombstone(event_id: str, raw: Mapping[str, Any]) -> ProviderEvent | None:
    """A cancelled event whose other fields do not fit: removed all the same."""
    if raw.get("status") != "cancelled":
        return None
    series = raw.get("recurringEventId")
    series_id = series if isinstance(series, str) else None
    return ProviderEvent(id=event_id, series_id=series_id, removed=True, status="cancelled")


# Reads the events of listing pages (providers.parsing.parse_page).
READER = EventReader(wire.Event, _parse, _known_bounds, _tombstone)
# A Google event as a ProviderEvent, or Quarantined when it cannot be read: from a listing
# page's raw item, or from JSON already decoded.
parse_item = READER.item
parse_event = READER.decoded


def appointment_body(body: AppointmentBody) -> dict[str, Any]:
    """The Google event JSON for an appointment (without `id`), tagged as calsync's own.

    Every field calsync owns is always sent, so a PATCH with it replaces them all.
    """
    zone = _zone(body.time_zone)
    return {
        "summary": body.title,
        "description": body.description or "",
        "location": body.location or "",
        "start": {"dateTime": body.start.astimezone(zone).isoformat(), "timeZone": body.time_zone},
        "end": {"dateTime": body.end.astimezone(zone).isoformat(), "timeZone": body.time_zone},
        "transparency": "opaque",
        # Google keeps a deleted event as "cancelled"; a patch must revive it, not move a ghost.
        "status": "confirmed",
        "attendees": [{"email": email} for email in body.attendees],
        "extendedProperties": {"private": {APPOINTMENT_PROPERTY: body.appointment_id}},
    }
