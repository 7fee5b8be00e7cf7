"""Typed shapes of the Google Calendar v3 JSON calsync reads and writes.

Event listings are msgspec structs (decoded in C, unread fields skipped); the rarer shapes
are TypedDicts over plain decoded JSON. Reference:
https://developers.google.com/workspace/calendar/api/v3/reference/events
"""

from __future__ import annotations

from typing import Generic, TypedDict, TypeVar

import msgspec

# The private extended property that marks an event as written by calsync.
APPOINTMENT_PROPERTY = "calsyncAppointmentId"

# 429 is not the only throttle: Google also answers 403 with these reasons.
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
# 410 reasons that mean "your sync token is dead", as opposed to "that event is deleted".
CURSOR_EXPIRED_REASONS = frozenset({"fullSyncRequired", "updatedMinTooLongAgo"})


# Event listings are decoded straight into these structs (msgspec, in C): a page of 2,500
# events is the hot path of every full sync. Fields calsync does not read are skipped
# unparsed; every field is optional, and mapping.py decides what an event must have.
class EventDateTime(msgspec.Struct):
    date: str | None = None
    dateTime: str | None = None
    timeZone: str | None = None


class Attendee(msgspec.Struct):
    email: str | None = None
    self: bool = False
    responseStatus: str | None = None


class ExtendedProperties(msgspec.Struct):
    private: dict[str, str] | None = None


class Event(msgspec.Struct):
    id: str | None = None
    status: str | None = None
    summary: str | None = None
    start: EventDateTime | None = None
    end: EventDateTime | None = None
    transparency: str | None = None
    eventType: str | None = None
    recurrence: list[str] | None = None
    recurringEventId: str | None = None
    attendees: list[Attendee] | None = None
    extendedProperties: ExtendedProperties | None = None
    etag: str | None = None


Item = TypeVar("Item")


class EventsPage(msgspec.Struct, Generic[Item]):
    """One events.list page: `EventsPage[Event]` when every item fits `Event` (decoded in one
    pass), else `EventsPage[msgspec.Raw]`, each item raw JSON until mapping.parse_item reads it,
    so one unreadable event is quarantined alone (providers.parsing.ListingDecoder)."""

    items: list[Item] | None = None
    nextPageToken: str | None = None
    nextSyncToken: str | None = None


class CalendarListEntry(TypedDict, total=False):
    id: str
    summary: str
    summaryOverride: str
    primary: bool
    accessRole: str
    deleted: bool


class CalendarList(TypedDict, total=False):
    items: list[CalendarListEntry]
    nextPageToken: str


class Channel(TypedDict, total=False):
    id: str
    resourceId: str
    resourceUri: str
    token: str
    expiration: str
