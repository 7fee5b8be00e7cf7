"""Typed shapes of the Microsoft Graph calendar JSON calsync reads and writes.

TypedDicts rather than validating models: delta pages are parsed on the hot path and
mapping.py checks only the fields it uses. Reference:
https://learn.microsoft.com/graph/api/resources/event
"""

from __future__ import annotations

from typing import TypedDict

# A fixed property-set GUID for calsync's tag; Graph names a string property by GUID + name.
APPOINTMENT_PROPERTY_ID = "String {8d3f2c1a-6b5e-4f7d-9a0c-1e2b3c4d5e6f} Name calsyncAppointmentId"
# transactionId prefix: the idempotency key of a create doubles as a tag that delta returns.
TRANSACTION_PREFIX = "calsync:"

# Error codes (any 4xx) that mean the delta token is dead and a new round must start.
CURSOR_EXPIRED_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
# Statuses Graph uses for throttling and transient failure (all may carry Retry-After).
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class DateTimeTimeZone(TypedDict, total=False):
    dateTime: str
    timeZone: str


class ResponseStatus(TypedDict, total=False):
    response: str
    time: str


class ExtendedProperty(TypedDict, total=False):
    id: str
    value: str


Event = TypedDict(
    "Event",
    {
        "id": str,
        "@removed": dict,
        "@odata.etag": str,
        "subject": str,
        "start": DateTimeTimeZone,
        "end": DateTimeTimeZone,
        "isAllDay": bool,
        "isCancelled": bool,
        "showAs": str,
        "type": str,
        "seriesMasterId": str,
        "responseStatus": ResponseStatus,
        "originalStartTimeZone": str,
        "lastModifiedDateTime": str,
        "transactionId": str,
        "singleValueExtendedProperties": list[ExtendedProperty],
    },
    total=False,
)

DeltaPage = TypedDict(
    "DeltaPage",
    {"value": list[Event], "@odata.nextLink": str, "@odata.deltaLink": str},
    total=False,
)


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
