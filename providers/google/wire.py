"""Typed shapes of the Google Calendar v3 JSON calsync reads and writes.

TypedDicts rather than validating models: pages of 2,500 events are parsed on the hot
path and mapping.py checks only the fields it uses. Reference:
https://developers.google.com/workspace/calendar/api/v3/reference/events
"""

from __future__ import annotations

from typing import TypedDict

# The private extended property that marks an event as written by calsync.
APPOINTMENT_PROPERTY = "calsyncAppointmentId"

# 429 is not the only throttle: Google also answers 403 with these reasons.
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
# 410 reasons that mean "your sync token is dead", as opposed to "that event is deleted".
CURSOR_EXPIRED_REASONS = frozenset({"fullSyncRequired", "updatedMinTooLongAgo"})


class EventDateTime(TypedDict, total=False):
    date: str
    dateTime: str
    timeZone: str


class Attendee(TypedDict, total=False):
    email: str
    self: bool
    responseStatus: str
    organizer: bool


class ExtendedProperties(TypedDict, total=False):
    private: dict[str, str]
    shared: dict[str, str]


class Event(TypedDict, total=False):
    id: str
    status: str
    summary: str
    description: str
    location: str
    start: EventDateTime
    end: EventDateTime
    transparency: str
    eventType: str
    recurrence: list[str]
    recurringEventId: str
    originalStartTime: EventDateTime
    attendees: list[Attendee]
    extendedProperties: ExtendedProperties
    etag: str
    updated: str


class Events(TypedDict, total=False):
    items: list[Event]
    nextPageToken: str
    nextSyncToken: str


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
