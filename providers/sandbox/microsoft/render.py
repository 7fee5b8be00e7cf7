"""Graph JSON for the sandbox's records: event, calendar, user. Pure functions, no I/O.

Shapes follow https://learn.microsoft.com/graph/api/resources/event and
.../resources/calendar; defaults are what Outlook returns for a plain event.
"""

from __future__ import annotations

from typing import Any

from providers.sandbox.microsoft import events as ev
from providers.sandbox.microsoft.state import Calendar, Mailbox
from providers.sandbox.microsoft.times import render_dtz, seven_digits, utc_stamp, windows_name, zone

# Values Outlook fills in when the client did not set them.
EVENT_DEFAULTS: dict[str, Any] = {
    "categories": [],
    "reminderMinutesBeforeStart": 15,
    "isReminderOn": True,
    "hasAttachments": False,
    "subject": "",
    "importance": "normal",
    "sensitivity": "normal",
    "isAllDay": False,
    "isCancelled": False,
    "isOrganizer": True,
    "responseRequested": True,
    "showAs": "busy",
    "onlineMeetingUrl": None,
    "isOnlineMeeting": False,
    "onlineMeetingProvider": "unknown",
    "allowNewTimeProposals": True,
    "isDraft": False,
    "hideAttendees": False,
    "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
    "body": {"contentType": "html", "content": ""},
    "location": {
        "displayName": "",
        "locationType": "default",
        "uniqueIdType": "unknown",
        "address": {},
        "coordinates": {},
    },
    "locations": [],
    "attendees": [],
    "onlineMeeting": None,
}
ALWAYS = ("@odata.etag", "id")  # $select never removes these
# Graph's property order. Names the server computes come from `_computed`; the rest are the
# client's values over EVENT_DEFAULTS. transactionId and originalStart appear only when set.
ORDER = (
    "@odata.etag",
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "transactionId",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "iCalUId",
    "reminderMinutesBeforeStart",
    "isReminderOn",
    "hasAttachments",
    "subject",
    "bodyPreview",
    "importance",
    "sensitivity",
    "isAllDay",
    "isCancelled",
    "isOrganizer",
    "responseRequested",
    "seriesMasterId",
    "showAs",
    "type",
    "webLink",
    "onlineMeetingUrl",
    "isOnlineMeeting",
    "onlineMeetingProvider",
    "allowNewTimeProposals",
    "isDraft",
    "hideAttendees",
    "responseStatus",
    "body",
    "start",
    "end",
    "originalStart",
    "location",
    "locations",
    "recurrence",
    "attendees",
    "organizer",
    "onlineMeeting",
)


def event_json(
    inst: ev.Instance,
    box: Mailbox,
    tz_name: str = "UTC",
    select: list[str] | None = None,
    expand_ids: list[str] | None = None,
) -> dict[str, Any]:
    """An event, occurrence or exception as Graph renders it in the requested zone."""
    merged = {**EVENT_DEFAULTS, **inst.event.fields, **(inst.override.fields if inst.override else {})}
    merged.update(_computed(inst, box, tz_name, merged))  # the server's values win
    out = {name: merged[name] for name in ORDER if name in merged}
    if expand_ids is not None:
        wanted = {i.lower() for i in expand_ids}
        out["singleValueExtendedProperties"] = [
            {"id": key, "value": value}
            for key, value in inst.event.extended.items()
            if not wanted or key.lower() in wanted
        ]
    return _select(out, select)


def _computed(inst: ev.Instance, box: Mailbox, tz_name: str, merged: dict[str, Any]) -> dict[str, Any]:
    """The properties the server owns for this instance."""
    event = inst.event
    is_instance = inst.original_start is not None
    out: dict[str, Any] = {
        "@odata.etag": inst.etag,
        "id": inst.id,
        "createdDateTime": utc_stamp(event.created),
        "lastModifiedDateTime": utc_stamp(inst.override.modified if inst.override else event.modified),
        "changeKey": inst.change_key,
        "originalStartTimeZone": windows_name(event.start_zone),
        "originalEndTimeZone": windows_name(event.end_zone),
        # Unlike Google's iCalUID, Graph's differs per occurrence.
        "iCalUId": f"{event.ical_uid}{inst.original_start:%Y%m%d}" if is_instance else event.ical_uid,
        "hasAttachments": False,
        "bodyPreview": _preview(merged["body"]),
        "seriesMasterId": event.id if is_instance else None,
        "type": inst.type,
        "webLink": f"https://outlook.office365.com/owa/?itemid={inst.id}&exvsurl=1&path=/calendar/item",
        "recurrence": event.recurrence if inst.type == "seriesMaster" else None,
    }
    out["start"], out["end"] = _times(inst, tz_name)
    if event.transaction_id is not None:
        out["transactionId"] = event.transaction_id
    if inst.original_start is not None:
        out["originalStart"] = inst.original_start.strftime("%Y-%m-%dT%H:%M:%SZ")
    if not merged.get("organizer"):
        out["organizer"] = {"emailAddress": {"name": box.display_name, "address": box.email}}
    return out


def _times(inst: ev.Instance, tz_name: str) -> tuple[dict[str, str], dict[str, str]]:
    if not inst.event.all_day:
        return render_dtz(inst.start, tz_name), render_dtz(inst.end, tz_name)
    # All-day items float: the same midnights whatever zone the caller asked for.
    own = zone(inst.override.start_zone if inst.override else inst.event.start_zone)
    start = inst.start.astimezone(own).replace(tzinfo=None)
    end = inst.end.astimezone(own).replace(tzinfo=None)
    return {"dateTime": seven_digits(start), "timeZone": tz_name}, {"dateTime": seven_digits(end), "timeZone": tz_name}


def _preview(body: Any) -> str:
    text = str(body.get("content") or "") if isinstance(body, dict) else ""
    return " ".join(text.split())[:255]


def _select(out: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if not select:
        return out
    keep = {*ALWAYS, *select, "singleValueExtendedProperties"}
    return {k: v for k, v in out.items() if k in keep}


def removed_json(event_id: str) -> dict[str, Any]:
    """A delta entry for an item that left the view."""
    return {
        "@odata.type": "#microsoft.graph.event",
        "id": event_id,
        "@removed": {"reason": "deleted"},
    }


def calendar_json(calendar: Calendar, box: Mailbox) -> dict[str, Any]:
    """A calendar as Graph renders it."""
    return {
        "id": calendar.id,
        "name": calendar.name,
        "color": "auto",
        "hexColor": "",
        "isDefaultCalendar": calendar.is_default,
        "changeKey": calendar.change_key,
        "canShare": True,
        "canViewPrivateItems": True,
        "canEdit": True,
        "allowedOnlineMeetingProviders": ["teamsForBusiness"],
        "defaultOnlineMeetingProvider": "teamsForBusiness",
        "isTallyingResponses": True,
        "isRemovable": not calendar.is_default,
        "owner": {"name": box.display_name, "address": box.email},
    }


def user_json(box: Mailbox) -> dict[str, Any]:
    """/me as Graph renders it with the default property set."""
    return {
        "businessPhones": [],
        "displayName": box.display_name,
        "givenName": box.display_name.split(" ")[0],
        "jobTitle": None,
        "mail": box.email,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": "en-US",
        "surname": box.display_name.split(" ")[-1],
        "userPrincipalName": box.email,
        "id": box.id,
    }
