"""Graph calendar semantics in the sandbox: events, recurrence expansion, calendarView options."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.sandbox.test_microsoft_support import WINDOW, Graph, new_graph, timed

WEEKLY = {
    "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"]},
    "range": {"type": "numbered", "startDate": "2026-12-01", "numberOfOccurrences": 4},
}


@pytest.fixture
async def graph(sandbox: Any) -> AsyncIterator[Graph]:
    """A Graph caller for a fresh mailbox."""
    caller = await new_graph(sandbox)
    yield caller
    await caller.close()


async def view(graph: Graph, path: str = "/me/calendarView", **params: str) -> list[dict[str, Any]]:
    """Every item of a calendarView, following nextLinks."""
    reply = await graph.call("GET", path, params={**WINDOW, "$top": "100", **params})
    assert reply.status == 200, reply.body
    items = list(reply.body["value"])
    while "@odata.nextLink" in reply.body:
        reply = await graph.call("GET", reply.body["@odata.nextLink"])
        items += reply.body["value"]
    return items


async def test_create_returns_201_with_weak_etag_and_changekey(graph: Graph) -> None:
    reply = await graph.call(
        "POST", "/me/events", json=timed("2026-12-01T09:00:00", "2026-12-01T10:00:00", subject="a")
    )
    assert reply.status == 201
    event = reply.body
    assert event["@odata.etag"] == f'W/"{event["changeKey"]}"'
    assert event["type"] == "singleInstance" and "transactionId" not in event
    assert event["start"] == {"dateTime": "2026-12-01T09:00:00.0000000", "timeZone": "UTC"}


async def test_transaction_id_makes_create_idempotent(graph: Graph, sandbox: Any) -> None:
    body = timed("2026-12-01T09:00:00", "2026-12-01T10:00:00", subject="once", transactionId="txn-42")
    first = await graph.call("POST", "/me/calendar/events", json=body)
    second = await graph.call("POST", "/me/events", json=body)
    assert first.body["id"] == second.body["id"] and second.body["transactionId"] == "txn-42"
    assert len(await sandbox.control.list_events("microsoft", graph.email)) == 1


async def test_patch_changes_etag_and_if_match_conflicts(graph: Graph) -> None:
    created = (await graph.call("POST", "/me/events", json=timed("2026-12-01T09:00:00", "2026-12-01T10:00:00"))).body
    path = f"/me/events/{created['id']}"
    patched = await graph.call("PATCH", path, json={"subject": "new"}, headers={"If-Match": created["@odata.etag"]})
    assert patched.status == 200 and patched.body["changeKey"] != created["changeKey"]
    stale = await graph.call("PATCH", path, json={"subject": "late"}, headers={"If-Match": created["@odata.etag"]})
    assert stale.status == 412 and stale.body["error"]["code"] == "ErrorIrresolvableConflict"
    stale_delete = await graph.call("DELETE", path, headers={"If-Match": created["@odata.etag"]})
    assert stale_delete.status == 412
    assert (await graph.call("DELETE", path)).status == 204
    missing = await graph.call("GET", path)
    assert missing.status == 404 and missing.body["error"]["code"] == "ErrorItemNotFound"


async def test_unknown_property_is_rejected(graph: Graph) -> None:
    reply = await graph.call(
        "POST", "/me/events", json=timed("2026-12-01T09:00:00", "2026-12-01T10:00:00", colour="red")
    )
    assert reply.status == 400 and "colour" in reply.body["error"]["message"]


async def test_all_day_needs_midnights_in_one_zone(graph: Graph) -> None:
    bad = timed("2026-12-01T09:00:00", "2026-12-02T00:00:00", isAllDay=True)
    assert (await graph.call("POST", "/me/events", json=bad)).status == 400
    good = timed("2026-12-01T00:00:00", "2026-12-03T00:00:00", "Pacific Standard Time", isAllDay=True)
    created = await graph.call("POST", "/me/events", json=good)
    assert created.status == 201
    # All-day items float: shown at midnight whatever zone the caller prefers.
    reply = await graph.call(
        "GET",
        "/me/calendarView",
        params=WINDOW,
        headers={"Prefer": 'outlook.timezone="Tokyo Standard Time"'},
    )
    (item,) = reply.body["value"]
    assert item["isAllDay"] is True
    assert item["start"] == {
        "dateTime": "2026-12-01T00:00:00.0000000",
        "timeZone": "Tokyo Standard Time",
    }


async def test_weekly_series_expands_in_calendar_view(graph: Graph) -> None:
    body = timed(
        "2026-12-01T09:00:00",
        "2026-12-01T09:30:00",
        "W. Europe Standard Time",
        subject="sync",
        recurrence=WEEKLY,
    )
    master = (await graph.call("POST", "/me/events", json=body)).body
    # 1 Dec 2026 is a Tuesday: the first occurrence is Wednesday the 2nd.
    assert master["type"] == "seriesMaster" and master["start"]["dateTime"] == "2026-12-02T08:00:00.0000000"
    items = await view(graph)
    assert [i["type"] for i in items] == ["occurrence"] * 4
    assert [i["start"]["dateTime"][:16] for i in items] == [
        "2026-12-02T08:00",
        "2026-12-07T08:00",
        "2026-12-09T08:00",
        "2026-12-14T08:00",
    ]
    assert {i["seriesMasterId"] for i in items} == {master["id"]}
    assert items[0]["originalStart"] == "2026-12-02T08:00:00Z"
    assert len({i["id"] for i in items}) == 4


@pytest.mark.parametrize(
    ("pattern", "range_", "expected"),
    [
        (
            {"type": "daily", "interval": 2},
            {"type": "endDate", "startDate": "2026-12-01", "endDate": "2026-12-07"},
            ["01", "03", "05", "07"],
        ),
        (
            {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 15},
            {"type": "numbered", "startDate": "2026-12-01", "numberOfOccurrences": 2},
            ["12-15", "01-15"],
        ),
        (
            {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"], "index": "last"},
            {"type": "numbered", "startDate": "2026-12-01", "numberOfOccurrences": 2},
            ["12-25", "01-29"],
        ),
        (
            {"type": "absoluteYearly", "interval": 1, "month": 12, "dayOfMonth": 24},
            {"type": "noEnd", "startDate": "2026-12-01"},
            ["12-24"],
        ),
    ],
)
async def test_pattern_types_expand(
    graph: Graph, pattern: dict[str, Any], range_: dict[str, Any], expected: list[str]
) -> None:
    body = timed(
        "2026-12-01T12:00:00",
        "2026-12-01T13:00:00",
        recurrence={"pattern": pattern, "range": range_},
    )
    assert (await graph.call("POST", "/me/events", json=body)).status == 201
    items = await view(graph, endDateTime="2027-02-01T00:00:00Z")
    starts = [i["start"]["dateTime"][:10] for i in items]
    assert [s[-len(expected[0]) :] for s in starts] == expected


async def test_occurrence_edit_becomes_exception_and_delete_cancels(graph: Graph) -> None:
    body = timed("2026-12-01T09:00:00", "2026-12-01T09:30:00", subject="sync", recurrence=WEEKLY)
    await graph.call("POST", "/me/events", json=body)
    first, second, *_ = await view(graph)
    moved = await graph.call(
        "PATCH",
        f"/me/events/{first['id']}",
        json={"subject": "moved", **timed("2026-12-02T15:00:00", "2026-12-02T15:30:00")},
    )
    assert moved.status == 200 and moved.body["type"] == "exception"
    assert (await graph.call("DELETE", f"/me/events/{second['id']}")).status == 204
    items = await view(graph)
    assert [(i["type"], i["subject"], i["start"]["dateTime"][:16]) for i in items] == [
        ("exception", "moved", "2026-12-02T15:00"),
        ("occurrence", "sync", "2026-12-09T09:00"),
        ("occurrence", "sync", "2026-12-14T09:00"),
    ]
    assert items[0]["id"] == first["id"]  # an exception keeps its occurrence id
    assert (await graph.call("GET", f"/me/events/{second['id']}")).status == 404


async def test_select_top_and_paging(graph: Graph, sandbox: Any) -> None:
    events = [timed(f"2026-12-{d:02d}T09:00:00", f"2026-12-{d:02d}T10:00:00", subject=f"d{d}") for d in range(1, 8)]
    await sandbox.control.bulk_load("microsoft", graph.email, events)
    reply = await graph.call("GET", "/me/calendarView", params={**WINDOW, "$top": "3", "$select": "subject"})
    assert len(reply.body["value"]) == 3 and "$skip=3" in reply.body["@odata.nextLink"]
    assert set(reply.body["value"][0]) == {"@odata.etag", "id", "subject"}
    paged = await graph.call("GET", "/me/calendarView", params=WINDOW, headers={"Prefer": "odata.maxpagesize=5"})
    assert len(paged.body["value"]) == 5 and paged.headers["Preference-Applied"] == "odata.maxpagesize=5"
    assert [i["subject"] for i in await view(graph)] == [f"d{d}" for d in range(1, 8)]


async def test_outlook_timezone_preference(graph: Graph) -> None:
    created = await graph.call("POST", "/me/events", json=timed("2026-12-01T09:00:00", "2026-12-01T10:00:00"))
    reply = await graph.call(
        "GET",
        f"/me/events/{created.body['id']}",
        headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'},
    )
    assert reply.body["start"] == {
        "dateTime": "2026-12-01T01:00:00.0000000",
        "timeZone": "Pacific Standard Time",
    }
    assert reply.headers["Preference-Applied"] == 'outlook.timezone="Pacific Standard Time"'


async def test_extended_properties_returned_when_expanded(graph: Graph) -> None:
    prop = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name calsync"
    body = timed(
        "2026-12-01T09:00:00",
        "2026-12-01T10:00:00",
        singleValueExtendedProperties=[{"id": prop, "value": "appt-1"}],
    )
    created = (await graph.call("POST", "/me/events", json=body)).body
    assert "singleValueExtendedProperties" not in created
    expand = f"singleValueExtendedProperties($filter=id eq '{prop}')"
    reply = await graph.call("GET", f"/me/events/{created['id']}", params={"$expand": expand})
    assert reply.body["singleValueExtendedProperties"] == [{"id": prop, "value": "appt-1"}]
    listed = await view(graph, **{"$expand": expand})
    assert listed[0]["singleValueExtendedProperties"][0]["value"] == "appt-1"


async def test_calendars_and_per_calendar_paths(graph: Graph, sandbox: Any) -> None:
    other = await sandbox.control.add_calendar("microsoft", graph.email, "Work")
    calendars = (await graph.call("GET", "/me/calendars")).body["value"]
    assert [(c["name"], c["isDefaultCalendar"]) for c in calendars] == [
        ("Calendar", True),
        ("Work", False),
    ]
    default = (await graph.call("GET", "/me/calendar")).body
    assert default["name"] == "Calendar"
    path = f"/me/calendars/{other['id']}"
    created = await graph.call("POST", f"{path}/events", json=timed("2026-12-01T09:00:00", "2026-12-01T10:00:00"))
    assert created.status == 201
    assert len(await view(graph, f"{path}/calendarView")) == 1
    assert await view(graph) == [] and await view(graph, "/me/calendar/calendarView") == []
    assert (await graph.call("GET", f"/me/calendar/events/{created.body['id']}")).status == 404


async def test_window_is_required_and_unknown_paths_are_graph_errors(graph: Graph) -> None:
    reply = await graph.call("GET", "/me/calendarView")
    assert reply.status == 400 and reply.body["error"]["code"] == "ErrorInvalidParameter"
    unknown = await graph.call("GET", "/me/nonsense")
    assert unknown.status == 400 and "nonsense" in unknown.body["error"]["message"]
    assert set(unknown.body["error"]["innerError"]) == {"date", "request-id", "client-request-id"}


async def test_users_paths_reach_only_the_own_mailbox(graph: Graph, sandbox: Any) -> None:
    me = (await graph.call("GET", "/me")).body
    created = await graph.call(
        "POST", f"/users/{graph.email}/calendar/events", json=timed("2026-12-01T09:00:00", "2026-12-01T10:00:00")
    )
    assert created.status == 201
    assert len(await view(graph, f"/users/{me['id']}/calendarView")) == 1
    other = await new_graph(sandbox)
    try:
        denied = await other.call("GET", f"/users/{graph.email}/calendarView", params=WINDOW)
    finally:
        await other.close()
    assert denied.status == 403 and denied.body["error"]["code"] == "ErrorAccessDenied"


async def test_series_keep_wall_clock_time_across_dst(graph: Graph) -> None:
    weekly = {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["friday"]},
        "range": {"type": "numbered", "startDate": "2027-03-26", "numberOfOccurrences": 2},
    }
    body = timed("2027-03-26T09:00:00", "2027-03-26T10:00:00", "W. Europe Standard Time", recurrence=weekly)
    assert (await graph.call("POST", "/me/events", json=body)).status == 201
    window = {"startDateTime": "2027-03-20T00:00:00Z", "endDateTime": "2027-04-05T00:00:00Z"}
    prefer = {"Prefer": 'outlook.timezone="W. Europe Standard Time"'}
    reply = await graph.call("GET", "/me/calendarView", params=window, headers=prefer)
    local = [i["start"]["dateTime"] for i in reply.body["value"]]
    assert local == ["2027-03-26T09:00:00.0000000", "2027-04-02T09:00:00.0000000"]
    utc = await graph.call("GET", "/me/calendarView", params=window)
    # Central Europe moves to summer time on 28 March 2027: 09:00 local is 08:00, then 07:00 UTC.
    assert [i["start"]["dateTime"][11:16] for i in utc.body["value"]] == ["08:00", "07:00"]


@pytest.mark.parametrize(
    "recurrence",
    [
        {"pattern": {"type": "daily", "interval": "often"}, "range": {"type": "noEnd", "startDate": "2026-12-01"}},
        {
            "pattern": {"type": "absoluteMonthly", "dayOfMonth": 40},
            "range": {"type": "noEnd", "startDate": "2026-12-01"},
        },
        {
            "pattern": {"type": "weekly", "daysOfWeek": ["someday"]},
            "range": {"type": "noEnd", "startDate": "2026-12-01"},
        },
        {"pattern": {"type": "hourly"}, "range": {"type": "noEnd", "startDate": "2026-12-01"}},
        {"pattern": {"type": "daily"}, "range": {"type": "numbered", "startDate": "2026-12-01"}},
    ],
)
async def test_malformed_recurrence_is_a_400(graph: Graph, recurrence: dict[str, Any]) -> None:
    body = timed("2026-12-01T09:00:00", "2026-12-01T10:00:00", recurrence=recurrence)
    reply = await graph.call("POST", "/me/events", json=body)
    assert reply.status == 400 and reply.body["error"]["code"]
