"""events.list: windows, expansion, ordering, paging and sync-token semantics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.sandbox.conftest import GoogleUser

EVENTS = "/calendars/primary/events"
BERLIN = "Europe/Berlin"


def timed(start: str, end: str, **extra: Any) -> dict[str, Any]:
    """A timed event body."""
    return {"start": {"dateTime": start}, "end": {"dateTime": end}, **extra}


def series(rules: list[str], **extra: Any) -> dict[str, Any]:
    """A daily 09:00-10:00 Berlin series starting 2026-03-27 (DST starts 03-29)."""
    return {
        "summary": "standup",
        "start": {"dateTime": "2026-03-27T09:00:00", "timeZone": BERLIN},
        "end": {"dateTime": "2026-03-27T10:00:00", "timeZone": BERLIN},
        "recurrence": rules,
        **extra,
    }


def reason(body: dict[str, Any]) -> str:
    """errors[0].reason of a Google error body."""
    return str(body["error"]["errors"][0]["reason"])


async def listing(guser: GoogleUser, **params: str) -> list[dict[str, Any]]:
    """All items of a listing, following page tokens."""
    items: list[dict[str, Any]] = []
    token = None
    while True:
        query = {**params, **({"pageToken": token} if token else {})}
        page = await guser.ok("GET", EVENTS, params=query)
        items += page["items"]
        token = page.get("nextPageToken")
        if token is None:
            return items


def numbered(n: int) -> list[dict[str, Any]]:
    """N distinct half-hour events, one per hour from 2026-01-01."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    moments = [base + timedelta(hours=i) for i in range(n)]
    return [
        timed(m.isoformat(), (m + timedelta(minutes=30)).isoformat(), summary=str(i)) for i, m in enumerate(moments)
    ]


async def test_expansion_keeps_wall_clock_across_dst_with_exdate_and_rdate(guser: GoogleUser) -> None:
    rules = ["RRULE:FREQ=DAILY;COUNT=4", "EXDATE;TZID=Europe/Berlin:20260328T090000", "RDATE:20260405T120000Z"]
    master = await guser.ok("POST", EVENTS, json=series(rules))
    items = await listing(guser, singleEvents="true", orderBy="startTime", timeZone=BERLIN)
    assert [i["start"]["dateTime"] for i in items] == [
        "2026-03-27T09:00:00+01:00",
        "2026-03-29T09:00:00+02:00",
        "2026-03-30T09:00:00+02:00",
        "2026-04-05T14:00:00+02:00",
    ]
    assert [i["id"] for i in items][:2] == [f"{master['id']}_20260327T080000Z", f"{master['id']}_20260329T070000Z"]
    assert all(i["recurringEventId"] == master["id"] and "recurrence" not in i for i in items)
    assert items[1]["originalStartTime"] == {"dateTime": "2026-03-29T09:00:00+02:00", "timeZone": BERLIN}


async def test_all_day_instances_use_date_suffix(guser: GoogleUser) -> None:
    body = {
        "start": {"date": "2026-05-01"},
        "end": {"date": "2026-05-02"},
        "recurrence": ["RRULE:FREQ=WEEKLY;UNTIL=20260515"],
    }
    master = await guser.ok("POST", EVENTS, json=body)
    items = await listing(guser, singleEvents="true")
    assert [i["id"] for i in items] == [f"{master['id']}_{d}" for d in ("20260501", "20260508", "20260515")]
    assert items[1]["start"] == {"date": "2026-05-08"} and items[1]["end"] == {"date": "2026-05-09"}


async def test_moved_and_cancelled_instances(guser: GoogleUser) -> None:
    master = await guser.ok("POST", EVENTS, json=series(["RRULE:FREQ=DAILY;COUNT=3"]))
    first, second = f"{master['id']}_20260327T080000Z", f"{master['id']}_20260328T080000Z"
    moved = await guser.ok("PATCH", f"{EVENTS}/{first}", json=timed("2026-03-27T15:00:00Z", "2026-03-27T16:00:00Z"))
    assert moved["id"] == first and moved["originalStartTime"]["dateTime"] == "2026-03-27T08:00:00Z"
    await guser.ok("DELETE", f"{EVENTS}/{second}")

    single = await listing(guser, singleEvents="true")
    assert [(i["id"], i["start"]["dateTime"]) for i in single] == [
        (first, "2026-03-27T15:00:00Z"),
        (f"{master['id']}_20260329T070000Z", "2026-03-29T07:00:00Z"),
    ]
    with_deleted = await listing(guser, singleEvents="true", showDeleted="true")
    assert {i["id"]: i["status"] for i in with_deleted}[second] == "cancelled"

    raw = await listing(guser)  # masters plus exceptions, cancelled exceptions included
    assert {i["id"] for i in raw} == {master["id"], first, second}
    assert next(i for i in raw if i["id"] == master["id"])["recurrence"] == ["RRULE:FREQ=DAILY;COUNT=3"]


async def test_deleting_a_series_cancels_it(guser: GoogleUser) -> None:
    master = await guser.ok("POST", EVENTS, json=series(["RRULE:FREQ=DAILY;COUNT=3"]))
    full = await guser.ok("GET", EVENTS, params={"singleEvents": "true"})
    await guser.ok("DELETE", f"{EVENTS}/{master['id']}")
    assert await listing(guser, singleEvents="true") == []
    changes = await guser.ok("GET", EVENTS, params={"singleEvents": "true", "syncToken": full["nextSyncToken"]})
    assert len(changes["items"]) == 3
    assert {i["status"] for i in changes["items"]} == {"cancelled"}


async def test_window_overlap_rule(guser: GoogleUser) -> None:
    for start, end, name in (
        ("2026-02-01T08:00:00Z", "2026-02-01T09:00:00Z", "ends-at-min"),
        ("2026-02-01T08:30:00Z", "2026-02-01T09:30:00Z", "overlaps-min"),
        ("2026-02-01T11:00:00Z", "2026-02-01T12:00:00Z", "starts-at-max"),
        ("2026-02-01T10:30:00Z", "2026-02-01T11:30:00Z", "overlaps-max"),
    ):
        await guser.ok("POST", EVENTS, json=timed(start, end, summary=name))
    items = await listing(guser, timeMin="2026-02-01T09:00:00Z", timeMax="2026-02-01T11:00:00+00:00")
    assert sorted(i["summary"] for i in items) == ["overlaps-max", "overlaps-min"]


@pytest.mark.parametrize(
    ("params", "status", "error"),
    [
        ({"orderBy": "startTime"}, 400, "badRequest"),
        ({"timeMin": "2026-01-02T00:00:00Z", "timeMax": "2026-01-01T00:00:00Z"}, 400, "timeRangeEmpty"),
        ({"timeMin": "2026-01-02T00:00:00"}, 400, "badRequest"),
        ({"maxResults": "0"}, 400, "invalid"),
        ({"pageToken": "garbage"}, 400, "invalid"),
    ],
)
async def test_list_parameter_errors(guser: GoogleUser, params: dict[str, str], status: int, error: str) -> None:
    got, body, _ = await guser.call("GET", EVENTS, params=params)
    assert (got, reason(body)) == (status, error)


async def test_order_by_start_time_and_updated(guser: GoogleUser) -> None:
    late = await guser.ok("POST", EVENTS, json=timed("2026-02-03T10:00:00Z", "2026-02-03T11:00:00Z"))
    early = await guser.ok("POST", EVENTS, json=timed("2026-02-01T10:00:00Z", "2026-02-01T11:00:00Z"))
    by_start = await listing(guser, singleEvents="true", orderBy="startTime")
    assert [i["id"] for i in by_start] == [early["id"], late["id"]]
    await guser.ok("PATCH", f"{EVENTS}/{late['id']}", json={"summary": "touched"})
    by_updated = await listing(guser, orderBy="updated")
    assert [i["id"] for i in by_updated] == [early["id"], late["id"]]


async def test_updated_min_includes_deletions(guser: GoogleUser) -> None:
    keep = await guser.ok("POST", EVENTS, json=timed("2026-02-01T10:00:00Z", "2026-02-01T11:00:00Z"))
    gone = await guser.ok("POST", EVENTS, json=timed("2026-02-02T10:00:00Z", "2026-02-02T11:00:00Z"))
    await guser.ok("DELETE", f"{EVENTS}/{gone['id']}")
    items = await listing(guser, updatedMin=keep["updated"])
    assert {i["id"]: i["status"] for i in items} == {keep["id"]: "confirmed", gone["id"]: "cancelled"}
    assert [i["id"] for i in await listing(guser)] == [keep["id"]]


async def test_private_extended_property_filter(guser: GoogleUser) -> None:
    props = {"extendedProperties": {"private": {"calsync": "yes"}}}
    mine = await guser.ok("POST", EVENTS, json=timed("2026-02-01T10:00:00Z", "2026-02-01T11:00:00Z", **props))
    await guser.ok("POST", EVENTS, json=timed("2026-02-02T10:00:00Z", "2026-02-02T11:00:00Z"))
    items = await listing(guser, privateExtendedProperty="calsync=yes")
    assert [i["id"] for i in items] == [mine["id"]]


async def test_max_results_default_and_cap(guser: GoogleUser) -> None:
    await guser.sb.control.bulk_load("google", guser.email, numbered(2600))
    default = await guser.ok("GET", EVENTS)
    assert len(default["items"]) == 250 and "nextSyncToken" not in default
    capped = await guser.ok("GET", EVENTS, params={"maxResults": "5000"})
    assert len(capped["items"]) == 2500 and capped["nextPageToken"]


@pytest.mark.parametrize(("total", "size", "pages"), [(20, 10, 2), (21, 10, 3), (9, 10, 1), (0, 10, 1)])
async def test_page_boundaries(guser: GoogleUser, total: int, size: int, pages: int) -> None:
    await guser.sb.control.bulk_load("google", guser.email, numbered(total))
    seen: list[str] = []
    token, count = None, 0
    while True:
        page = await guser.ok(
            "GET", EVENTS, params={"maxResults": str(size), **({"pageToken": token} if token else {})}
        )
        count += 1
        seen += [i["summary"] for i in page["items"]]
        token = page.get("nextPageToken")
        assert ("nextSyncToken" in page) == (token is None)
        if token is None:
            break
    assert count == pages
    assert seen == [str(i) for i in range(total)]


async def test_snapshot_is_stable_while_paging_and_changes_reach_next_sync(guser: GoogleUser) -> None:
    await guser.sb.control.bulk_load("google", guser.email, numbered(6))
    first = await guser.ok("GET", EVENTS, params={"maxResults": "3"})
    added = await guser.ok("POST", EVENTS, json=timed("2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z"))
    await guser.ok("DELETE", f"{EVENTS}/{first['items'][0]['id']}")
    last = await guser.ok("GET", EVENTS, params={"maxResults": "3", "pageToken": first["nextPageToken"]})
    assert [i["summary"] for i in first["items"] + last["items"]] == [str(i) for i in range(6)]
    changes = await guser.ok("GET", EVENTS, params={"syncToken": last["nextSyncToken"]})
    assert {i["id"]: i["status"] for i in changes["items"]} == {
        added["id"]: "confirmed",
        first["items"][0]["id"]: "cancelled",
    }


async def test_sync_token_reports_each_change_once_with_minimal_tombstones(guser: GoogleUser) -> None:
    a = await guser.ok("POST", EVENTS, json=timed("2026-02-01T10:00:00Z", "2026-02-01T11:00:00Z", summary="a"))
    full = await guser.ok("GET", EVENTS)
    await guser.ok("PATCH", f"{EVENTS}/{a['id']}", json={"summary": "a2"})
    await guser.ok("PATCH", f"{EVENTS}/{a['id']}", json={"summary": "a3"})
    b = await guser.ok("POST", EVENTS, json=timed("2026-02-02T10:00:00Z", "2026-02-02T11:00:00Z"))
    await guser.ok("DELETE", f"{EVENTS}/{b['id']}")
    changes = await guser.ok("GET", EVENTS, params={"syncToken": full["nextSyncToken"]})
    assert [i["id"] for i in changes["items"]] == [a["id"], b["id"]]
    assert changes["items"][0]["summary"] == "a3"
    assert set(changes["items"][1]) <= {"kind", "etag", "id", "status", "updated"}
    nothing = await guser.ok("GET", EVENTS, params={"syncToken": changes["nextSyncToken"]})
    assert nothing["items"] == [] and nothing["nextSyncToken"]


async def test_incremental_sync_pages(guser: GoogleUser) -> None:
    full = await guser.ok("GET", EVENTS)
    await guser.sb.control.bulk_load("google", guser.email, numbered(5))
    first = await guser.ok("GET", EVENTS, params={"syncToken": full["nextSyncToken"], "maxResults": "3"})
    assert len(first["items"]) == 3 and "nextSyncToken" not in first
    params = {"syncToken": full["nextSyncToken"], "maxResults": "3", "pageToken": first["nextPageToken"]}
    rest = await guser.ok("GET", EVENTS, params=params)
    assert len(rest["items"]) == 2 and rest["nextSyncToken"]


@pytest.mark.parametrize(
    "param",
    [
        {"timeMin": "2026-01-01T00:00:00Z"},
        {"timeMax": "2026-01-01T00:00:00Z"},
        {"updatedMin": "2026-01-01T00:00:00Z"},
        {"orderBy": "updated"},
        {"q": "x"},
        {"iCalUID": "x"},
        {"privateExtendedProperty": "a=b"},
        {"sharedExtendedProperty": "a=b"},
    ],
)
async def test_forbidden_parameters_with_sync_token(guser: GoogleUser, param: dict[str, str]) -> None:
    full = await guser.ok("GET", EVENTS)
    status, body, _ = await guser.call("GET", EVENTS, params={"syncToken": full["nextSyncToken"], **param})
    assert (status, reason(body)) == (400, "invalid")


async def test_invalidated_sync_token_is_410_full_sync_required(guser: GoogleUser) -> None:
    full = await guser.ok("GET", EVENTS)
    await guser.sb.control.invalidate_cursors("google", guser.email)
    status, body, _ = await guser.call("GET", EVENTS, params={"syncToken": full["nextSyncToken"]})
    assert (status, reason(body)) == (410, "fullSyncRequired")
    assert body["error"]["message"] == "Sync token is no longer valid, a full sync is required."
    fresh = await guser.ok("GET", EVENTS)
    assert (await guser.call("GET", EVENTS, params={"syncToken": fresh["nextSyncToken"]}))[0] == 200


async def test_sync_token_of_another_calendar_is_410(guser: GoogleUser) -> None:
    second = await guser.sb.control.add_calendar("google", guser.email, "Other")
    full = await guser.ok("GET", EVENTS)
    status, body, _ = await guser.call(
        "GET", f"/calendars/{second['id']}/events", params={"syncToken": full["nextSyncToken"]}
    )
    assert (status, reason(body)) == (410, "fullSyncRequired")


async def test_no_sync_token_after_ordered_listing(guser: GoogleUser) -> None:
    page = await guser.ok("GET", EVENTS, params={"singleEvents": "true", "orderBy": "startTime"})
    assert "nextSyncToken" not in page and "nextPageToken" not in page
