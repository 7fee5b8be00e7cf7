"""What a Graph event is in the sandbox: the stored record, its writes, and its instances.

https://learn.microsoft.com/graph/api/resources/event . Records are immutable: a write
builds a new record, so the delta log can keep the version a change replaced. A series
master expands into occurrences and exceptions through the shared recurrence module.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from providers.sandbox import recurrence
from providers.sandbox.microsoft import pattern
from providers.sandbox.microsoft.errors import GraphError
from providers.sandbox.microsoft.times import parse_dtz, zone

# Every property of microsoft.graph.event (v1.0); anything else in a body is a 400.
EVENT_PROPERTIES = frozenset(
    [
        "allowNewTimeProposals",
        "attachments",
        "attendees",
        "body",
        "bodyPreview",
        "calendar",
        "cancelledOccurrences",
        "categories",
        "changeKey",
        "createdDateTime",
        "end",
        "exceptionOccurrences",
        "extensions",
        "hasAttachments",
        "hideAttendees",
        "iCalUId",
        "id",
        "importance",
        "instances",
        "isAllDay",
        "isCancelled",
        "isDraft",
        "isOnlineMeeting",
        "isOrganizer",
        "isReminderOn",
        "lastModifiedDateTime",
        "location",
        "locations",
        "multiValueExtendedProperties",
        "onlineMeeting",
        "onlineMeetingProvider",
        "onlineMeetingUrl",
        "organizer",
        "originalEndTimeZone",
        "originalStart",
        "originalStartTimeZone",
        "recurrence",
        "reminderMinutesBeforeStart",
        "responseRequested",
        "responseStatus",
        "sensitivity",
        "seriesMasterId",
        "showAs",
        "singleValueExtendedProperties",
        "start",
        "subject",
        "transactionId",
        "type",
        "webLink",
    ]
)
# Server-computed; a client may send them back unchanged (SDK round trips) and Graph ignores them.
READ_ONLY = frozenset(
    [
        "id",
        "createdDateTime",
        "lastModifiedDateTime",
        "changeKey",
        "type",
        "seriesMasterId",
        "originalStart",
        "iCalUId",
        "webLink",
        "bodyPreview",
        "hasAttachments",
        "instances",
        "calendar",
        "attachments",
        "extensions",
        "cancelledOccurrences",
        "exceptionOccurrences",
    ]
)
SPECIAL = frozenset({"start", "end", "recurrence", "singleValueExtendedProperties", "transactionId"})
SHOW_AS = frozenset({"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"})
OCCURRENCE_PREFIX = "AAMkOcc"


def new_id() -> str:
    """An opaque, case-sensitive, URL-safe id shaped like Exchange's."""
    return "AAMkAD" + secrets.token_urlsafe(33)


def new_change_key() -> str:
    """A fresh changeKey (base64, like Exchange's)."""
    return base64.b64encode(secrets.token_bytes(16)).decode()


def occurrence_id(master_id: str, original: datetime) -> str:
    """The stable id of one occurrence: it survives edits that turn it into an exception."""
    raw = f"{master_id}|{original.astimezone(UTC):%Y%m%dT%H%M%SZ}".encode()
    return OCCURRENCE_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def split_occurrence_id(event_id: str) -> tuple[str, datetime] | None:
    """(master id, original start) for an occurrence id, else None."""
    if not event_id.startswith(OCCURRENCE_PREFIX):
        return None
    body = event_id[len(OCCURRENCE_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        master, stamp = raw.rsplit("|", 1)
        return master, datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


@dataclass(frozen=True, slots=True)
class Override:
    """How one occurrence differs from its series (it is then an `exception`)."""

    fields: dict[str, Any]
    start: datetime
    end: datetime
    start_zone: str
    end_zone: str
    change_key: str
    modified: datetime


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A single event or a series master, as the mailbox stores it."""

    id: str
    calendar_id: str
    fields: dict[str, Any]  # client-set properties other than SPECIAL ones
    start: datetime  # UTC
    end: datetime
    start_zone: str
    end_zone: str
    created: datetime
    modified: datetime
    change_key: str
    ical_uid: str
    transaction_id: str | None = None
    extended: dict[str, str] = field(default_factory=dict)  # singleValueExtendedProperties
    recurrence: dict[str, Any] | None = None  # normalised patternedRecurrence
    rrule: str | None = None
    exceptions: dict[datetime, Override] = field(default_factory=dict)
    cancelled: frozenset[datetime] = frozenset()

    @property
    def is_series(self) -> bool:
        """Whether this is a series master."""
        return self.rrule is not None

    @property
    def etag(self) -> str:
        """The weak ETag Graph puts in @odata.etag."""
        return f'W/"{self.change_key}"'

    @property
    def all_day(self) -> bool:
        """Whether the event is all-day."""
        return bool(self.fields.get("isAllDay"))


@dataclass(frozen=True, slots=True)
class Instance:
    """What calendarView returns: a single event, an occurrence or an exception."""

    event: StoredEvent
    id: str
    type: str  # singleInstance | occurrence | exception | seriesMaster
    start: datetime
    end: datetime
    original_start: datetime | None = None
    override: Override | None = None

    @property
    def change_key(self) -> str:
        """The instance's changeKey (an exception has its own)."""
        return self.override.change_key if self.override else self.event.change_key

    @property
    def etag(self) -> str:
        """The instance's weak ETag."""
        return f'W/"{self.change_key}"'


def check_properties(body: dict[str, Any]) -> None:
    """Graph rejects properties the event type does not define."""
    for name in body:
        if name.startswith("@odata."):
            continue
        if name not in EVENT_PROPERTIES:
            raise GraphError(
                400,
                "RequestBodyRead",
                f"The property '{name}' does not exist on type 'microsoft.graph.event'. Make sure "
                "to only use property names that are defined by the type or mark the type as "
                "open type.",
            )


def plain_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The properties stored verbatim (not computed, not specially handled)."""
    out = {k: v for k, v in body.items() if k not in READ_ONLY and k not in SPECIAL and not k.startswith("@")}
    if "showAs" in out and out["showAs"] not in SHOW_AS:
        raise GraphError(400, "RequestBodyRead", f"Requested value '{out['showAs']}' was not found.")
    return out


def extended_props(value: Any, current: dict[str, str]) -> dict[str, str]:
    """Merge singleValueExtendedProperties ([{id, value}]) into the stored map."""
    if value is None:
        return current
    if not isinstance(value, list):
        raise GraphError(400, "RequestBodyRead", "singleValueExtendedProperties must be a collection.")
    merged = dict(current)
    for item in value:
        if not isinstance(item, dict) or "id" not in item:
            raise GraphError(400, "ErrorInvalidProperty", "An extended property needs an id.")
        merged[str(item["id"])] = str(item.get("value") or "")
    return merged


def check_times(start: datetime, end: datetime, start_zone: str, end_zone: str, all_day: bool) -> None:
    """Graph's validation of start/end, including the all-day midnight rule."""
    if end < start:
        raise GraphError(400, "ErrorInvalidParameter", "The end time must be after the start time.")
    if not all_day:
        return
    local_start = start.astimezone(zone(start_zone))
    local_end = end.astimezone(zone(end_zone))
    midnight = all(t.hour == t.minute == t.second == t.microsecond == 0 for t in (local_start, local_end))
    if start_zone != end_zone or not midnight or end == start:
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            "Your request can't be completed. If the event is an all-day event, the start and end "
            "time must be at midnight and in the same time zone.",
        )


def series_fields(
    recurrence_body: Any, start: datetime, start_zone: str
) -> tuple[dict[str, Any] | None, str | None, datetime]:
    """(normalised recurrence, RRULE, first occurrence start) for a series, or Nones."""
    if recurrence_body is None:
        return None, None, start
    if not isinstance(recurrence_body, dict):
        raise GraphError(400, "RequestBodyRead", "recurrence must be a patternedRecurrence.")
    tz = zone(start_zone)
    local = start.astimezone(tz).replace(tzinfo=None)
    rule = pattern.to_rule(recurrence_body, local)
    # Outlook moves the master to its first real occurrence, so the start is always one.
    anchor = rule.dtstart.replace(tzinfo=tz)
    try:
        first = _first_rule_match(anchor, rule.rrule)
    except ValueError as exc:  # e.g. dayOfMonth 40: dateutil refuses the rule
        raise GraphError(400, "ErrorInvalidRequest", f"The recurrence pattern is not valid: {exc}") from exc
    if first is None:
        raise GraphError(400, "ErrorInvalidRequest", "The recurrence pattern has no occurrences.")
    return pattern.normalise(recurrence_body, local, start_zone), rule.rrule, first.astimezone(UTC)


def _first_rule_match(anchor: datetime, rrule: str) -> datetime | None:
    """The first start the rule itself produces (the anchor counts only if it matches)."""
    rule = recurrence.parse_rule(rrule, anchor)
    return rule.after(anchor, inc=True)


def build(
    body: dict[str, Any],
    *,
    calendar_id: str,
    now: datetime,
    event_id: str | None = None,
) -> StoredEvent:
    """A new event record from a POST body (validated as Graph does)."""
    check_properties(body)
    start, start_zone = parse_dtz(body.get("start"), "start")
    end, end_zone = parse_dtz(body.get("end"), "end")
    fields = plain_fields(body)
    recur, rrule, first = series_fields(body.get("recurrence"), start, start_zone)
    end = end + (first - start)
    check_times(first, end, start_zone, end_zone, bool(fields.get("isAllDay")))
    return StoredEvent(
        id=event_id or new_id(),
        calendar_id=calendar_id,
        fields=fields,
        start=first,
        end=end,
        start_zone=start_zone,
        end_zone=end_zone,
        created=now,
        modified=now,
        change_key=new_change_key(),
        ical_uid="040000008200E00074C5B7101A82E008" + secrets.token_hex(28).upper(),
        transaction_id=body.get("transactionId"),
        extended=extended_props(body.get("singleValueExtendedProperties"), {}),
        recurrence=recur,
        rrule=rrule,
    )


def patched(event: StoredEvent, patch: dict[str, Any], now: datetime) -> StoredEvent:
    """The record after a PATCH on the event (or master) itself."""
    check_properties(patch)
    txn = patch.get("transactionId")
    if txn is not None and txn != event.transaction_id:
        raise GraphError(400, "ErrorInvalidPropertyUpdateSentToApi", "The transactionId cannot be changed.")
    start, start_zone = parse_dtz(patch["start"], "start") if "start" in patch else (event.start, event.start_zone)
    end, end_zone = parse_dtz(patch["end"], "end") if "end" in patch else (event.end, event.end_zone)
    fields = {**event.fields, **plain_fields(patch)}
    timing_changed = "start" in patch or "end" in patch or "recurrence" in patch
    raw_recurrence = patch.get("recurrence", event.recurrence)
    recur, rrule, first = series_fields(raw_recurrence, start, start_zone)
    end = end + (first - start)
    check_times(first, end, start_zone, end_zone, bool(fields.get("isAllDay")))
    # As in Outlook, changing a series' timing discards its exceptions and deletions.
    keep = not timing_changed
    return replace(
        event,
        fields=fields,
        start=first,
        end=end,
        start_zone=start_zone,
        end_zone=end_zone,
        modified=now,
        change_key=new_change_key(),
        extended=extended_props(patch.get("singleValueExtendedProperties"), event.extended),
        recurrence=recur,
        rrule=rrule,
        exceptions=event.exceptions if keep and rrule else {},
        cancelled=event.cancelled if keep and rrule else frozenset(),
    )


def with_exception(master: StoredEvent, original: datetime, patch: dict[str, Any], now: datetime) -> StoredEvent:
    """The master after one of its occurrences was edited (PATCH on the occurrence id)."""
    check_properties(patch)
    if "recurrence" in patch:
        raise GraphError(400, "ErrorInvalidRequest", "An occurrence cannot have its own recurrence.")
    current = master.exceptions.get(original)
    base_start = current.start if current else original
    base_end = current.end if current else original + (master.end - master.start)
    start, start_zone = (
        parse_dtz(patch["start"], "start")
        if "start" in patch
        else (base_start, current.start_zone if current else master.start_zone)
    )
    end, end_zone = (
        parse_dtz(patch["end"], "end")
        if "end" in patch
        else (base_end, current.end_zone if current else master.end_zone)
    )
    fields = {**(current.fields if current else {}), **plain_fields(patch)}
    check_times(start, end, start_zone, end_zone, bool({**master.fields, **fields}.get("isAllDay")))
    override = Override(fields, start, end, start_zone, end_zone, new_change_key(), now)
    return replace(master, exceptions={**master.exceptions, original: override}, modified=now)


def without_occurrence(master: StoredEvent, original: datetime, now: datetime) -> StoredEvent:
    """The master after one occurrence was deleted."""
    exceptions = {k: v for k, v in master.exceptions.items() if k != original}
    return replace(master, exceptions=exceptions, cancelled=master.cancelled | {original}, modified=now)


def instances(event: StoredEvent, window_start: datetime, window_end: datetime) -> list[Instance]:
    """The event's instances overlapping [window_start, window_end)."""
    if not event.is_series:
        if overlaps(event.start, event.end, window_start, window_end):
            return [Instance(event, event.id, "singleInstance", event.start, event.end)]
        return []
    duration = event.end - event.start
    out = []
    for original in _originals(event, window_start - _max_shift(event), window_end + _max_shift(event)):
        override = event.exceptions.get(original)
        start = override.start if override else original
        end = override.end if override else original + duration
        if overlaps(start, end, window_start, window_end):
            kind = "exception" if override else "occurrence"
            out.append(Instance(event, occurrence_id(event.id, original), kind, start, end, original, override))
    return out


def overlaps(start: datetime, end: datetime, window_start: datetime, window_end: datetime) -> bool:
    """calendarView's rule: the event overlaps the window (a zero-length one sits inside it)."""
    if start == end:
        return window_start <= start < window_end
    return start < window_end and end > window_start


def _max_shift(event: StoredEvent) -> timedelta:
    """How far an exception moved from its original slot (widens the expansion window)."""
    shifts = [max(abs(o.start - k), abs(o.end - k)) for k, o in event.exceptions.items()]
    return max(shifts, default=timedelta(0))


def _originals(event: StoredEvent, window_start: datetime, window_end: datetime) -> list[datetime]:
    """Original starts (UTC) of the series' live occurrences in a window."""
    tz = zone(event.start_zone)
    anchor = event.start.astimezone(tz)
    found = recurrence.occurrences(
        anchor,
        ["RRULE:" + (event.rrule or "")],
        duration=event.end - event.start,
        window_start=window_start.astimezone(tz),
        window_end=window_end.astimezone(tz),
    )
    return [moment.astimezone(UTC) for moment in found if moment.astimezone(UTC) not in event.cancelled]


def instance_at(event: StoredEvent, original: datetime) -> Instance | None:
    """The occurrence or exception of a series that originally started at `original`."""
    if not event.is_series or original in event.cancelled:
        return None
    tz = zone(event.start_zone)
    if not recurrence.includes(event.start.astimezone(tz), ["RRULE:" + (event.rrule or "")], original.astimezone(tz)):
        return None
    override = event.exceptions.get(original)
    start = override.start if override else original
    end = override.end if override else original + (event.end - event.start)
    kind = "exception" if override else "occurrence"
    return Instance(event, occurrence_id(event.id, original), kind, start, end, original, override)


def master_instance(event: StoredEvent) -> Instance:
    """The event itself as an Instance (type seriesMaster or singleInstance)."""
    kind = "seriesMaster" if event.is_series else "singleInstance"
    return Instance(event, event.id, kind, event.start, event.end)
