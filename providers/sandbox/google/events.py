"""Pure rules for Calendar v3 event bodies: ids, fields, times, patch merge, rendering.

Stored events keep `dateTime` values normalised to UTC (`...Z`); rendering converts
them to the zone the response asks for, as Google renders in the calendar's zone (or
the request's `timeZone`) while echoing the event's own `timeZone` field.
"""

from __future__ import annotations

import copy
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from providers.sandbox import recurrence
from providers.sandbox.google.errors import GoogleError

ID_RE = re.compile(r"[a-v0-9]{5,1024}")
INSTANCE_RE = re.compile(r"(.+)_(\d{8})(T\d{6}Z)?")
EXT_KEY_MAX = 44  # longer keys are silently dropped (extended-properties guide)
EXT_VALUE_MAX = 1024  # longer values are silently truncated

WRITABLE = {
    "id", "summary", "description", "location", "start", "end", "endTimeUnspecified",
    "recurrence", "transparency", "visibility", "status", "attendees", "extendedProperties",
    "reminders", "colorId", "iCalUID", "sequence", "source", "guestsCanInviteOthers",
    "guestsCanModify", "guestsCanSeeOtherGuests", "anyoneCanAddSelf", "eventType",
    "attachments", "conferenceData", "originalStartTime", "locked", "privateCopy",
    "focusTimeProperties", "outOfOfficeProperties", "workingLocationProperties",
    "birthdayProperties", "gadget",
}  # fmt: skip
READ_ONLY = {
    "kind", "etag", "htmlLink", "created", "updated", "creator", "organizer",
    "recurringEventId", "hangoutLink", "attendeesOmitted",
}  # fmt: skip
ENUMS = {
    "status": {"confirmed", "tentative", "cancelled"},
    "transparency": {"opaque", "transparent"},
    "visibility": {"default", "public", "private", "confidential"},
    "eventType": {"default", "outOfOffice", "focusTime", "workingLocation", "birthday"},
}
RESPONSES = {"needsAction", "declined", "tentative", "accepted"}


@dataclass(frozen=True)
class Span:
    """Where an event sits in time: UTC instants, plus the all-day flag."""

    start: datetime
    end: datetime
    all_day: bool


def new_id() -> str:
    """A server-generated event id (hex is a subset of base32hex)."""
    return uuid.uuid4().hex


def check_id(event_id: Any) -> str:
    """A client-supplied id, or 400 invalid."""
    if not isinstance(event_id, str) or not ID_RE.fullmatch(event_id):
        raise GoogleError("invalid", "Invalid resource id value.", location="id")
    return event_id


def timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds, as Google writes `updated`/`created`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def zone(name: str, which: str) -> ZoneInfo:
    """An IANA zone, or 400 for an unknown name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise GoogleError("invalid", f"Invalid time zone definition for {which} time.") from exc


def clean(body: dict[str, Any]) -> dict[str, Any]:
    """Writable fields only: read-only ones are ignored, unknown ones are a 400."""
    unknown = set(body) - WRITABLE - READ_ONLY
    if unknown:
        name = sorted(unknown)[0]
        raise GoogleError("invalid", f'Invalid JSON payload received. Unknown name "{name}".')
    out = {k: v for k, v in body.items() if k in WRITABLE}
    for key, allowed in ENUMS.items():
        if key in out and out[key] not in allowed:
            raise GoogleError("invalid", f"Invalid value for: {key}", location=key)
    return out


def check_attendees(attendees: Any, owner: str) -> list[dict[str, Any]]:
    """Attendees with email required, responseStatus checked and `self` set for the owner."""
    if not isinstance(attendees, list):
        raise GoogleError("invalid", "Invalid attendees value.", location="attendees")
    result = []
    for attendee in attendees:
        if not isinstance(attendee, dict) or not attendee.get("email"):
            raise GoogleError("required", "Missing attendee email.", location="attendees")
        item = {k: v for k, v in attendee.items() if k != "self"}
        item.setdefault("responseStatus", "needsAction")
        if item["responseStatus"] not in RESPONSES:
            raise GoogleError("invalid", "Invalid attendee responseStatus.")
        if item["email"].lower() == owner.lower():
            item["self"] = True
        result.append(item)
    return result


def check_extended(props: Any) -> dict[str, dict[str, str]]:
    """extendedProperties with Google's silent key drop and value truncation."""
    if not isinstance(props, dict) or set(props) - {"private", "shared"}:
        raise GoogleError("invalid", "Invalid extendedProperties value.")
    out: dict[str, dict[str, str]] = {}
    for scope, values in props.items():
        if values is None:
            continue
        if not isinstance(values, dict):
            raise GoogleError("invalid", "Invalid extendedProperties value.")
        kept = {k: str(v)[:EXT_VALUE_MAX] for k, v in values.items() if v is not None and len(k) <= EXT_KEY_MAX}
        out[scope] = kept
    return out


def parse_edt(edt: Any, which: str, cal_zone: tzinfo, recurring: bool) -> tuple[dict[str, Any], datetime, bool]:
    """Validate one EventDateTime; return (stored form, UTC instant, all-day)."""
    if not isinstance(edt, dict) or not (edt.get("date") or edt.get("dateTime")):
        raise GoogleError("required", f"Missing {which} time.")
    tz_name = edt.get("timeZone")
    own_zone = zone(tz_name, which) if tz_name else None
    if edt.get("date"):
        try:
            day = date.fromisoformat(edt["date"])
        except (TypeError, ValueError) as exc:
            raise GoogleError("invalid", f"Invalid {which} time.") from exc
        stored = {"date": day.isoformat()}
        midnight = datetime(day.year, day.month, day.day, tzinfo=cal_zone).astimezone(UTC)
        return stored, midnight, True
    try:
        moment = datetime.fromisoformat(edt["dateTime"])
    except (TypeError, ValueError) as exc:
        raise GoogleError("invalid", f"Invalid {which} time.") from exc
    if (moment.tzinfo is None and own_zone is None) or (recurring and own_zone is None):
        raise GoogleError("required", f"Missing time zone definition for {which} time.")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=own_zone)
    utc = moment.astimezone(UTC)
    stored = {"dateTime": utc.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if tz_name:
        stored["timeZone"] = tz_name
    return stored, utc, False


def normalize_times(event: dict[str, Any], cal_zone: tzinfo) -> Span:
    """Check start/end in place (stored forms replace the given ones) and return the span."""
    recurring = bool(event.get("recurrence"))
    if "start" not in event:
        raise GoogleError("required", "Missing start time.", location="start")
    if "end" not in event:
        raise GoogleError("required", "Missing end time.", location="end")
    start, start_at, all_day = parse_edt(event["start"], "start", cal_zone, recurring)
    end, end_at, end_all_day = parse_edt(event["end"], "end", cal_zone, recurring)
    if all_day != end_all_day:
        raise GoogleError("invalid", "Start and end times must either both be date or both be dateTime.")
    if end_at < start_at:
        raise GoogleError("timeRangeEmpty", location="end")
    event["start"], event["end"] = start, end
    if recurring:
        check_recurrence(event["recurrence"], start_at, all_day)
    return Span(start_at, end_at, all_day)


def check_recurrence(lines: Any, start: datetime, all_day: bool) -> None:
    """400 for recurrence lines the expander cannot read."""
    if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
        raise GoogleError("invalid", "Invalid recurrence rule.", location="recurrence")
    anchor = start.replace(tzinfo=None) if all_day else start
    try:
        recurrence.build_ruleset(anchor, lines)
    except (recurrence.RecurrenceError, ValueError, KeyError) as exc:
        raise GoogleError("invalid", "Invalid recurrence rule.", location="recurrence") from exc


def merge_patch(old: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Google patch semantics: objects merge, arrays and scalars replace, null deletes.

    EventDateTime objects are replaced whole, so switching date ↔ dateTime works.
    """
    merged = copy.deepcopy(old)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif key in ("start", "end", "originalStartTime") or not isinstance(value, dict):
            merged[key] = copy.deepcopy(value)
        elif isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = {k: copy.deepcopy(v) for k, v in value.items() if v is not None}
    return merged


def render_edt(edt: dict[str, Any], out_zone: tzinfo) -> dict[str, Any]:
    """An EventDateTime with its dateTime shown in the response's zone."""
    if "dateTime" not in edt:
        return edt
    moment = datetime.fromisoformat(edt["dateTime"]).astimezone(out_zone)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    offset = moment.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        text += "Z"
    else:
        text += moment.strftime("%z")[:3] + ":" + moment.strftime("%z")[3:]
    return {**edt, "dateTime": text}


def render(event: dict[str, Any], out_zone: tzinfo, *, minimal: bool = False) -> dict[str, Any]:
    """The wire form of a stored event (minimal: only what a tombstone guarantees)."""
    if minimal:
        keep = ("kind", "etag", "id", "status", "updated", "recurringEventId", "originalStartTime")
        event = {k: event[k] for k in keep if k in event}
    out = dict(event)
    for key in ("start", "end", "originalStartTime"):
        if key in out:
            out[key] = render_edt(out[key], out_zone)
    return out


def instance_suffix(start: datetime, all_day: bool) -> str:
    """`YYYYMMDD` for all-day instances, `YYYYMMDDTHHMMSSZ` (UTC) for timed ones."""
    if all_day:
        return start.strftime("%Y%m%d")
    return start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def split_instance_id(event_id: str) -> tuple[str, str] | None:
    """(master id, suffix) for an instance id, else None."""
    match = INSTANCE_RE.fullmatch(event_id)
    if match is None:
        return None
    return match.group(1), match.group(2) + (match.group(3) or "")
