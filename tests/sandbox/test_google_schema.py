"""Fidelity: every response body validates against Google's own Calendar v3 discovery document.

The document ships inside google-api-python-client's wheel. A field the sandbox returns
that Google's schema lacks, or that has another JSON type, fails the test; so does a
method served on a path or HTTP verb the document does not list.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import googleapiclient
import pytest

if TYPE_CHECKING:
    from tests.sandbox.conftest import GoogleUser

DISCOVERY = json.loads(
    (Path(googleapiclient.__file__).parent / "discovery_cache/documents/calendar.v3.json").read_text()
)
SCHEMAS = DISCOVERY["schemas"]
JSON_TYPES = {
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": (int, float),
    "array": list,
    "object": dict,
}


def method(resource: str, name: str) -> dict[str, Any]:
    """A method's discovery entry."""
    return DISCOVERY["resources"][resource]["methods"][name]  # type: ignore[no-any-return]


def violations(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    """Every place where `value` leaves `schema` (unknown field or wrong type)."""
    if "$ref" in schema:
        return violations(value, SCHEMAS[schema["$ref"]], where)
    kind = schema.get("type", "any")
    if kind == "any":
        return []
    expected = JSON_TYPES[kind]
    if not isinstance(value, expected) or (kind == "integer" and isinstance(value, bool)):
        return [f"{where}: {type(value).__name__} is not {kind}"]
    if kind == "array":
        return [p for i, v in enumerate(value) for p in violations(v, schema["items"], f"{where}[{i}]")]
    if kind == "object":
        return object_violations(value, schema, where)
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} not in {schema['enum']}"]
    return []


def object_violations(value: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    """Unknown keys and bad values of an object."""
    problems = []
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        sub = props.get(key) or extra
        if sub is None:
            problems.append(f"{where}.{key}: not in Google's schema")
        else:
            problems.extend(violations(item, sub, f"{where}.{key}"))
    return problems


def assert_valid(body: Any, resource: str, name: str) -> None:
    """The body matches the method's response schema."""
    schema = {"$ref": method(resource, name)["response"]["$ref"]}
    assert violations(body, schema, name) == []


def assert_route(resource: str, name: str, verb: str, path: str) -> None:
    """The sandbox serves the method on Google's own verb and path."""
    entry = method(resource, name)
    assert entry["httpMethod"] == verb
    assert entry["path"] == path


RICH_EVENT = {
    "id": "abcdef0123456789",
    "summary": "Planning",
    "description": "<b>agenda</b>",
    "location": "Room 1",
    "start": {"dateTime": "2026-03-02T09:00:00", "timeZone": "Europe/Berlin"},
    "end": {"dateTime": "2026-03-02T10:00:00", "timeZone": "Europe/Berlin"},
    "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4", "EXDATE;TZID=Europe/Berlin:20260309T090000"],
    "transparency": "opaque",
    "visibility": "private",
    "status": "tentative",
    "attendees": [{"email": "x@example.test", "responseStatus": "accepted", "optional": True}],
    "extendedProperties": {"private": {"calsync": "1"}, "shared": {"k": "v"}},
    "reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": 10}]},
    "colorId": "3",
}


async def seeded(guser: GoogleUser) -> dict[str, Any]:
    """Insert the rich series (attendee list includes the owner) and return it."""
    body = {**RICH_EVENT, "attendees": [*RICH_EVENT["attendees"], {"email": guser.email}]}
    event = await guser.ok("POST", "/calendars/primary/events", json=body)
    allday = {"start": {"date": "2026-03-05"}, "end": {"date": "2026-03-06"}, "summary": "Off"}
    await guser.ok("POST", "/calendars/primary/events", json=allday)
    return event  # type: ignore[no-any-return]


async def test_calendar_list_list(guser: GoogleUser) -> None:
    assert_route("calendarList", "list", "GET", "users/me/calendarList")
    await guser.sb.control.add_calendar("google", guser.email, "Second")
    body = await guser.ok("GET", "/users/me/calendarList", params={"maxResults": "1"})
    assert_valid(body, "calendarList", "list")
    assert body["nextPageToken"]
    last = await guser.ok("GET", "/users/me/calendarList", params={"pageToken": body["nextPageToken"]})
    assert_valid(last, "calendarList", "list")


async def test_calendar_list_get(guser: GoogleUser) -> None:
    assert_route("calendarList", "get", "GET", "users/me/calendarList/{calendarId}")
    body = await guser.ok("GET", f"/users/me/calendarList/{guser.email}")
    assert_valid(body, "calendarList", "get")


async def test_calendars_get(guser: GoogleUser) -> None:
    assert_route("calendars", "get", "GET", "calendars/{calendarId}")
    assert_valid(await guser.ok("GET", "/calendars/primary"), "calendars", "get")


async def test_events_insert(guser: GoogleUser) -> None:
    assert_route("events", "insert", "POST", "calendars/{calendarId}/events")
    assert_valid(await seeded(guser), "events", "insert")


async def test_events_list_single_and_deleted(guser: GoogleUser) -> None:
    assert_route("events", "list", "GET", "calendars/{calendarId}/events")
    event = await seeded(guser)
    await guser.ok("DELETE", f"/calendars/primary/events/{event['id']}_20260316T080000Z")
    for params in (
        {"singleEvents": "true", "showDeleted": "true"},
        {"singleEvents": "false"},
        {
            "singleEvents": "true",
            "orderBy": "startTime",
            "maxResults": "2",
            "timeZone": "Asia/Tokyo",
        },
    ):
        body = await guser.ok("GET", "/calendars/primary/events", params=params)
        assert body["items"]
        assert_valid(body, "events", "list")


async def test_events_list_incremental(guser: GoogleUser) -> None:
    event = await seeded(guser)
    full = await guser.ok("GET", "/calendars/primary/events")
    await guser.ok("DELETE", f"/calendars/primary/events/{event['id']}")
    changes = await guser.ok("GET", "/calendars/primary/events", params={"syncToken": full["nextSyncToken"]})
    assert [i["status"] for i in changes["items"]] == ["cancelled"]
    assert_valid(changes, "events", "list")


async def test_events_get(guser: GoogleUser) -> None:
    assert_route("events", "get", "GET", "calendars/{calendarId}/events/{eventId}")
    event = await seeded(guser)
    assert_valid(await guser.ok("GET", f"/calendars/primary/events/{event['id']}"), "events", "get")
    instance = f"/calendars/primary/events/{event['id']}_20260302T080000Z"
    assert_valid(await guser.ok("GET", instance), "events", "get")


async def test_events_patch(guser: GoogleUser) -> None:
    assert_route("events", "patch", "PATCH", "calendars/{calendarId}/events/{eventId}")
    event = await seeded(guser)
    patch = {"summary": "moved", "extendedProperties": {"private": {"calsync": None}}}
    body = await guser.ok("PATCH", f"/calendars/primary/events/{event['id']}", json=patch)
    assert_valid(body, "events", "patch")


async def test_events_update(guser: GoogleUser) -> None:
    assert_route("events", "update", "PUT", "calendars/{calendarId}/events/{eventId}")
    event = await seeded(guser)
    body = await guser.ok("PUT", f"/calendars/primary/events/{event['id']}", json=RICH_EVENT)
    assert_valid(body, "events", "update")


async def test_events_instances(guser: GoogleUser) -> None:
    assert_route("events", "instances", "GET", "calendars/{calendarId}/events/{eventId}/instances")
    event = await seeded(guser)
    body = await guser.ok("GET", f"/calendars/primary/events/{event['id']}/instances")
    assert len(body["items"]) == 3  # four weekly, one excluded
    assert_valid(body, "events", "instances")


async def test_events_delete_has_no_body(guser: GoogleUser) -> None:
    assert_route("events", "delete", "DELETE", "calendars/{calendarId}/events/{eventId}")
    event = await seeded(guser)
    status, body, _ = await guser.call("DELETE", f"/calendars/primary/events/{event['id']}")
    assert (status, body) == (204, None)


@pytest.mark.parametrize("verb", ["watch"])
async def test_events_watch_and_channels_stop(guser: GoogleUser, verb: str) -> None:
    assert_route("events", verb, "POST", "calendars/{calendarId}/events/watch")
    assert_route("channels", "stop", "POST", "channels/stop")
    spec = {"id": "chan-1", "type": "web_hook", "address": "http://127.0.0.1:9/x", "token": "t"}
    channel = await guser.ok("POST", "/calendars/primary/events/watch", json=spec)
    assert_valid(channel, "events", "watch")
    stop = {"id": channel["id"], "resourceId": channel["resourceId"]}
    status, body, _ = await guser.call("POST", "/channels/stop", json=stop)
    assert (status, body) == (204, None)


def test_validator_catches_unknown_fields_and_wrong_types() -> None:
    event = {"id": "x", "bogus": 1, "sequence": "1", "start": {"date": 20260101}}
    problems = violations(event, {"$ref": "Event"}, "event")
    assert problems == [
        "event.bogus: not in Google's schema",
        "event.sequence: str is not integer",
        "event.start.date: int is not string",
    ]
