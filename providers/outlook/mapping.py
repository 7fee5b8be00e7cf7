"""Pure translation between Microsoft Graph event JSON and calsync's provider-neutral types.

No I/O and no clock. Anything that cannot be read becomes `Quarantined` rather than an
exception, so one bad event never stops its calendar. Field meanings:
https://learn.microsoft.com/graph/api/resources/event
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from tzlocal.windows_tz import win_tz

from providers.base import AppointmentBody, ProviderEvent, Response, ShowAs
from providers.outlook import wire
from providers.outlook.wire import APPOINTMENT_PROPERTY_ID, TRANSACTION_PREFIX
from providers.parsing import EventReader

_SHOW_AS: dict[str, ShowAs] = {
    "free": "free",
    "tentative": "tentative",
    "busy": "busy",
    "oof": "oof",
    "workingElsewhere": "working_elsewhere",
    "unknown": "unknown",
}
_RESPONSES: dict[str, Response] = {
    "accepted": "accepted",
    "organizer": "accepted",
    "declined": "declined",
    "tentativelyAccepted": "tentative",
    "notResponded": "needs_action",
}
# Zone names Graph uses for UTC besides the IANA one. We ask for UTC via Prefer; any other
# zone is read as IANA or as a Windows name (Graph's native ones), else quarantined.
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Coordinated Universal Time", "tzone://Microsoft/Utc"})
_PROPERTY_ID = APPOINTMENT_PROPERTY_ID.lower()


def transaction_id_for(appointment_id: str) -> str:
    """The Graph transactionId for an appointment: an idempotency key that also tags it."""
    return TRANSACTION_PREFIX + appointment_id


def _parse(event_id: str, event: wire.Event) -> ProviderEvent:
    if event.removed is not msgspec.UNSET:  # a delta entry for a deleted event
        return ProviderEvent(id=event_id, removed=True, status="cancelled")
    if event.type == "seriesMaster":
        raise ValueError("series master returned unexpanded")
    start, end = event.start, event.end
    if start is None or end is None:
        raise ValueError("event has no start or no end")
    all_day = bool(event.isAllDay)
    return ProviderEvent(
        id=event_id,
        series_id=event.seriesMasterId,
        status="cancelled" if event.isCancelled else "confirmed",
        start=_when(start, all_day),
        end=_when(end, all_day),
        all_day=all_day,
        time_zone=event.originalStartTimeZone or start.timeZone,
        show_as=_SHOW_AS.get(event.showAs or "busy", "unknown"),
        self_response=_RESPONSES.get(event.responseStatus.response or "") if event.responseStatus else None,
        appointment_tag=_appointment_tag(event),
        etag=event.etag,
        summary=event.subject,
    )


def _when(value: wire.DateTimeTimeZone, all_day: bool) -> date | datetime:
    text = value.dateTime
    if text is None:
        raise ValueError("start or end without dateTime")
    if all_day:
        # All-day spans are midnight to midnight in one zone: only the date part matters,
        # and the resource's own zone decides which instants it covers.
        return date.fromisoformat(text[:10])
    if value.timeZone is None or value.timeZone in _UTC_NAMES:
        # What calsync asks for: read once with its offset appended (5x cheaper than replace()).
        try:
            return datetime.fromisoformat(text + "+00:00")  # 3.11 reads Graph's 7 fractional digits
        except ValueError:
            pass  # the text carries its own offset (or is no time at all): read below
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=_zone(value.timeZone or "UTC"))


@lru_cache(maxsize=512)
def _zone(name: str) -> tzinfo:
    if name in _UTC_NAMES:
        return UTC
    try:
        return ZoneInfo(win_tz.get(name, name))
    except (KeyError, ValueError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {name!r}") from exc


def _appointment_tag(event: wire.Event) -> str | None:
    for prop in event.singleValueExtendedProperties or ():
        if (prop.id or "").lower() == _PROPERTY_ID and prop.value:
            return prop.value
    transaction = event.transactionId
    if transaction is not None and transaction.startswith(TRANSACTION_PREFIX):
        return transaction[len(TRANSACTION_PREFIX) :] or None
    return None


def _instant_or_none(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _known_bounds(raw: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    """Best-effort bounds of an event that failed to parse, read as UTC, so it can still block."""
    try:
        start = _instant_or_none(raw["start"]["dateTime"])
        end = _instant_or_none(raw["end"]["dateTime"])
    except (KeyError, TypeError):
        return None
    if start is None or end is None or end <= start:
        return None
    return start, end


def _tombstone(event_id: str, raw: Mapping[str, Any]) -> ProviderEvent | None:
    """A delta `@removed` entry whose other fields do not fit: removed all the same."""
    return ProviderEvent(id=event_id, removed=True, status="cancelled") if "@removed" in raw else None


# Reads the events of listing pages (providers.parsing.parse_page).
READER = EventReader(wire.Event, _parse, _known_bounds, _tombstone)
# A Graph event (or delta `@removed` entry) as a ProviderEvent, or Quarantined when it cannot
# be read: from a delta page's raw item, or from JSON already decoded.
parse_item = READER.item
parse_event = READER.decoded


def graph_time(value: datetime) -> str:
    """A UTC instant in Graph's dateTimeTimeZone form (no offset, 7 fractional digits)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"


def appointment_body(body: AppointmentBody) -> dict[str, Any]:
    """The Graph event JSON for an appointment, tagged as calsync's own.

    Times are sent in UTC, the one zone name every Graph tenant accepts. Attendees are not
    sent: Graph mails invitations for them and has no way to suppress that (Google's
    sendUpdates=none has no Graph equivalent), so they go into the body text instead.
    """
    text = body.description or ""
    if body.attendees:
        text = f"{text}\n\nAttendees: {', '.join(body.attendees)}".lstrip()
    return {
        "subject": body.title,
        "body": {"contentType": "text", "content": text},
        "start": {"dateTime": graph_time(body.start), "timeZone": "UTC"},
        "end": {"dateTime": graph_time(body.end), "timeZone": "UTC"},
        "location": {"displayName": body.location or ""},
        "isAllDay": False,
        "showAs": "busy",
        "singleValueExtendedProperties": [{"id": APPOINTMENT_PROPERTY_ID, "value": body.appointment_id}],
    }
