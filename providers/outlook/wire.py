"""Typed shapes of the Microsoft Graph calendar JSON calsync reads and writes.

Delta pages are msgspec structs (decoded in C, unread fields skipped); the rarer shapes are
TypedDicts over plain decoded JSON. Reference:
https://learn.microsoft.com/graph/api/resources/event
"""

from __future__ import annotations

from typing import Any, Generic, TypedDict, TypeVar

import msgspec

# A fixed property-set GUID for calsync's tag; Graph names a string property by GUID + name.
APPOINTMENT_PROPERTY_ID = "String {8d3f2c1a-6b5e-4f7d-9a0c-1e2b3c4d5e6f} Name calsyncAppointmentId"
# transactionId prefix: the idempotency key of a create doubles as a tag that delta returns.
TRANSACTION_PREFIX = "calsync:"

# Error codes (any 4xx) that mean the delta token is dead and a new round must start.
CURSOR_EXPIRED_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
# Statuses Graph uses for throttling and transient failure (all may carry Retry-After).
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


# Delta pages are decoded straight into these structs (msgspec, in C): they are the hot path
# of every full sync. Fields calsync does not read are skipped unparsed; every field is
# optional, and mapping.py decides what an event must have.
class DateTimeTimeZone(msgspec.Struct):
    dateTime: str | None = None
    timeZone: str | None = None


class ResponseStatus(msgspec.Struct):
    response: str | None = None


class ExtendedProperty(msgspec.Struct):
    id: str | None = None
    value: str | None = None


class Event(msgspec.Struct):
    id: str | None = None
    # Present (whatever its value) only on a delta entry for a deleted event.
    removed: Any = msgspec.field(default=msgspec.UNSET, name="@removed")
    etag: str | None = msgspec.field(default=None, name="@odata.etag")
    subject: str | None = None
    start: DateTimeTimeZone | None = None
    end: DateTimeTimeZone | None = None
    isAllDay: bool | None = None
    isCancelled: bool | None = None
    showAs: str | None = None
    type: str | None = None
    seriesMasterId: str | None = None
    responseStatus: ResponseStatus | None = None
    originalStartTimeZone: str | None = None
    transactionId: str | None = None
    singleValueExtendedProperties: list[ExtendedProperty] | None = None


Item = TypeVar("Item")


class DeltaPage(msgspec.Struct, Generic[Item]):
    """One calendarView/delta page: `DeltaPage[Event]` when every item fits `Event` (decoded in
    one pass), else `DeltaPage[msgspec.Raw]`, each item raw JSON until mapping.parse_item reads
    it, so one unreadable event is quarantined alone (providers.parsing.ListingDecoder)."""

    value: list[Item] | None = None
    next_link: str | None = msgspec.field(default=None, name="@odata.nextLink")
    delta_link: str | None = msgspec.field(default=None, name="@odata.deltaLink")


class Calendar(TypedDict, total=False):
    id: str
    name: str
    isDefaultCalendar: bool
    canEdit: bool


class Subscription(TypedDict, total=False):
    id: str
    resource: str
    changeType: str
    notificationUrl: str
    lifecycleNotificationUrl: str
    expirationDateTime: str
    clientState: str
