"""Calendar v3 event semantics: ids, etags, validation, patch rules, deletion, rendering."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.sandbox.conftest import GoogleUser

EVENTS = "/calendars/primary/events"


def timed(start: str, end: str, **extra: Any) -> dict[str, Any]:
    """A timed event body."""
    return {"start": {"dateTime": start}, "end": {"dateTime": end}, **extra}


BASIC = timed("2026-04-01T10:00:00Z", "2026-04-01T11:00:00Z", summary="basic")


def reason(body: dict[str, Any]) -> str:
    """errors[0].reason of a Google error body."""
    return str(body["error"]["errors"][0]["reason"])


@pytest.mark.parametrize("event_id", ["ABCDEF", "abc-def", "abcdw", "abcd", "a" * 1025, "abc_def"])
async def test_client_ids_outside_base32hex_are_invalid(guser: GoogleUser, event_id: str) -> None:
    status, body, _ = await guser.call("POST", EVENTS, json={**BASIC, "id": event_id})
    assert (status, reason(body)) == (400, "invalid")
    assert body["error"]["message"] == "Invalid resource id value."


async def test_client_id_accepted_then_duplicate_even_when_deleted(guser: GoogleUser) -> None:
    created = await guser.ok("POST", EVENTS, json={**BASIC, "id": "v0123456789"})
    assert created["id"] == "v0123456789"
    status, body, _ = await guser.call("POST", EVENTS, json={**BASIC, "id": "v0123456789"})
    assert (status, reason(body)) == (409, "duplicate")
    await guser.ok("DELETE", f"{EVENTS}/v0123456789")
    status, body, _ = await guser.call("POST", EVENTS, json={**BASIC, "id": "v0123456789"})
    assert (status, reason(body)) == (409, "duplicate")


async def test_insert_200_delete_204_then_410_and_get_shows_cancelled(guser: GoogleUser) -> None:
    status, created, _ = await guser.call("POST", EVENTS, json=BASIC)
    assert status == 200 and created["status"] == "confirmed"
    assert created["etag"].startswith('"') and created["etag"].endswith('"')
    assert (await guser.call("DELETE", f"{EVENTS}/{created['id']}"))[0] == 204
    status, body, _ = await guser.call("DELETE", f"{EVENTS}/{created['id']}")
    assert (status, reason(body)) == (410, "deleted")
    assert (await guser.ok("GET", f"{EVENTS}/{created['id']}"))["status"] == "cancelled"
    assert (await guser.call("GET", f"{EVENTS}/nosuchevent1"))[0] == 404


async def test_if_match_and_if_none_match(guser: GoogleUser) -> None:
    created = await guser.ok("POST", EVENTS, json=BASIC)
    path = f"{EVENTS}/{created['id']}"
    status, _, _ = await guser.call("GET", path, headers={"If-None-Match": created["etag"]})
    assert status == 304
    patched = await guser.ok("PATCH", path, json={"summary": "a"}, headers={"If-Match": created["etag"]})
    assert patched["etag"] != created["etag"]
    for verb, body in (("PATCH", {"summary": "b"}), ("PUT", BASIC), ("DELETE", None)):
        status, error, _ = await guser.call(verb, path, json=body, headers={"If-Match": created["etag"]})
        assert (status, reason(error)) == (412, "conditionNotMet")
        assert error["error"]["errors"][0]["location"] == "If-Match"


async def test_patch_merges_and_null_deletes_extended_property(guser: GoogleUser) -> None:
    props = {"private": {"a": "1", "b": "2"}, "shared": {"s": "x"}}
    created = await guser.ok("POST", EVENTS, json={**BASIC, "extendedProperties": props, "location": "L"})
    path = f"{EVENTS}/{created['id']}"
    patched = await guser.ok("PATCH", path, json={"extendedProperties": {"private": {"a": None, "c": "3"}}})
    assert patched["extendedProperties"] == {"private": {"b": "2", "c": "3"}, "shared": {"s": "x"}}
    assert patched["location"] == "L" and patched["summary"] == "basic"
    updated = await guser.ok("PUT", path, json=BASIC)
    assert "extendedProperties" not in updated and "location" not in updated


async def test_extended_property_limits(guser: GoogleUser) -> None:
    props = {"private": {"k" * 45: "dropped", "long": "v" * 2000}}
    created = await guser.ok("POST", EVENTS, json={**BASIC, "extendedProperties": props})
    assert created["extendedProperties"]["private"] == {"long": "v" * 1024}


async def test_attendees_self_and_default_response(guser: GoogleUser) -> None:
    attendees = [{"email": guser.email, "responseStatus": "declined"}, {"email": "o@example.test"}]
    created = await guser.ok("POST", EVENTS, json={**BASIC, "attendees": attendees})
    assert created["attendees"] == [
        {"email": guser.email, "responseStatus": "declined", "self": True},
        {"email": "o@example.test", "responseStatus": "needsAction"},
    ]
    status, body, _ = await guser.call("POST", EVENTS, json={**BASIC, "attendees": [{"displayName": "x"}]})
    assert (status, reason(body)) == (400, "required")


async def test_transparency_status_and_all_day(guser: GoogleUser) -> None:
    allday = {"start": {"date": "2026-04-02"}, "end": {"date": "2026-04-03"}}
    created = await guser.ok("POST", EVENTS, json={**allday, "transparency": "transparent", "status": "tentative"})
    assert created["start"] == {"date": "2026-04-02"}
    assert (created["transparency"], created["status"]) == ("transparent", "tentative")
    status, body, _ = await guser.call("POST", EVENTS, json={**allday, "transparency": "see-through"})
    assert (status, reason(body)) == (400, "invalid")


async def test_date_times_render_in_requested_zone(guser: GoogleUser) -> None:
    body = {
        "start": {"dateTime": "2026-07-01T10:00:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2026-07-01T11:00:00", "timeZone": "Europe/Berlin"},
    }
    created = await guser.ok("POST", EVENTS, json=body)
    assert created["start"] == {"dateTime": "2026-07-01T08:00:00Z", "timeZone": "Europe/Berlin"}
    shown = await guser.ok("GET", f"{EVENTS}/{created['id']}", params={"timeZone": "America/New_York"})
    assert shown["start"]["dateTime"] == "2026-07-01T04:00:00-04:00"


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ({"start": {"date": "2026-01-01"}}, "required", "Missing end time."),
        (
            {"start": {"date": "2026-01-01"}, "end": {"dateTime": "2026-01-01T10:00:00Z"}},
            "invalid",
            "Start and end times must either both be date or both be dateTime.",
        ),
        (
            timed("2026-01-01T10:00:00", "2026-01-01T11:00:00"),
            "required",
            "Missing time zone definition for start time.",
        ),
        (
            timed("2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z", recurrence=["RRULE:FREQ=DAILY"]),
            "required",
            "Missing time zone definition for start time.",
        ),
        (
            timed("2026-01-01T10:00:00Z", "2026-01-01T09:00:00Z"),
            "timeRangeEmpty",
            "The specified time range is empty.",
        ),
        (
            {"start": {"dateTime": "2026-01-01T10:00:00", "timeZone": "Mars/Base"}, "end": {"date": "x"}},
            "invalid",
            "Invalid time zone definition for start time.",
        ),
        ({**BASIC, "colour": "red"}, "invalid", 'Invalid JSON payload received. Unknown name "colour".'),
        (
            {
                "start": {"dateTime": "2026-01-01T10:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2026-01-01T11:00:00", "timeZone": "UTC"},
                "recurrence": ["RRULE:FREQ=SOMETIMES"],
            },
            "invalid",
            "Invalid recurrence rule.",
        ),
    ],
)
async def test_insert_validation(guser: GoogleUser, body: dict[str, Any], error: str, message: str) -> None:
    status, got, _ = await guser.call("POST", EVENTS, json=body)
    assert (status, reason(got), got["error"]["message"]) == (400, error, message)
    assert got["error"]["code"] == 400


async def test_read_only_fields_are_ignored(guser: GoogleUser) -> None:
    created = await guser.ok("POST", EVENTS, json={**BASIC, "etag": '"x"', "kind": "k", "updated": "1999"})
    assert created["kind"] == "calendar#event" and created["etag"] != '"x"'


async def test_patch_can_resurrect_a_cancelled_event(guser: GoogleUser) -> None:
    created = await guser.ok("POST", EVENTS, json=BASIC)
    await guser.ok("DELETE", f"{EVENTS}/{created['id']}")
    back = await guser.ok("PATCH", f"{EVENTS}/{created['id']}", json={"status": "confirmed"})
    assert back["status"] == "confirmed"


async def test_sequence_rises_when_times_change(guser: GoogleUser) -> None:
    created = await guser.ok("POST", EVENTS, json=BASIC)
    moved = await guser.ok(
        "PATCH", f"{EVENTS}/{created['id']}", json=timed("2026-04-01T12:00:00Z", "2026-04-01T13:00:00Z")
    )
    assert (created["sequence"], moved["sequence"]) == (0, 1)


async def test_calendars_of_other_users_are_not_found(guser: GoogleUser) -> None:
    await guser.sb.control.create_user("google", "other@example.test")
    for path in ("/calendars/other@example.test/events", "/calendars/nope/events"):
        status, body, _ = await guser.call("GET", path)
        assert (status, reason(body)) == (404, "notFound")


async def test_secondary_calendar_is_separate(guser: GoogleUser) -> None:
    second = await guser.sb.control.add_calendar("google", guser.email, "Work")
    await guser.ok("POST", f"/calendars/{second['id']}/events", json=BASIC)
    assert (await guser.ok("GET", EVENTS))["items"] == []
    assert len((await guser.ok("GET", f"/calendars/{second['id']}/events"))["items"]) == 1


async def test_bad_json_body_is_parse_error(guser: GoogleUser) -> None:
    status, body, _ = await guser.call("POST", EVENTS, data=b"{nope", headers={"Content-Type": "application/json"})
    assert (status, reason(body)) == (400, "parseError")


async def test_unserved_paths_are_google_not_found(guser: GoogleUser) -> None:
    for verb, path in (("GET", "/colors"), ("POST", f"{EVENTS}/abcdef")):
        status, body, _ = await guser.call(verb, path)
        assert (status, reason(body)) == (404, "notFound")
