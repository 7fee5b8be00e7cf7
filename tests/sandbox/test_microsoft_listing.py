"""Graph listings in the sandbox (calendarView, its delta, /events): compact UTF-8 JSON, as
Graph writes it, with the same values a single GET returns and nothing stale after edits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.sandbox.test_microsoft_support import WINDOW, Graph, new_graph, timed

DAILY = {
    "pattern": {"type": "daily", "interval": 1},
    "range": {"type": "numbered", "startDate": "2026-12-02", "numberOfOccurrences": 3},
}
LISTINGS = ("/me/calendarView", "/me/calendarView/delta", "/me/events")


@pytest.fixture
async def graph(sandbox: Any) -> AsyncIterator[Graph]:
    """A Graph caller for a fresh mailbox."""
    caller = await new_graph(sandbox)
    yield caller
    await caller.close()


async def listed(graph: Graph, path: str, prefer: str = "odata.maxpagesize=2") -> dict[str, dict[str, Any]]:
    """Every item of a listing by id, following nextLinks (and checking each page's bytes)."""
    url, params = graph.base + path, (None if path == "/me/events" else WINDOW)
    headers = {"Authorization": f"Bearer {graph.token}", "Prefer": prefer}
    items: dict[str, dict[str, Any]] = {}
    while url:
        async with graph.session.get(url, params=params, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            raw = await resp.read()
            assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
        page = json.loads(raw)
        assert raw == json.dumps(page, separators=(",", ":"), ensure_ascii=False).encode()
        items |= {item["id"]: item for item in page["value"]}
        url, params = page.get("@odata.nextLink"), None
    return items


async def seed(graph: Graph) -> tuple[str, str]:
    """A single event with non-ASCII text and a daily series; returns their ids."""
    body = {"contentType": "html", "content": "<p>Grüße ☃ 😀</p>"}
    single = timed("2026-12-01T09:00:00", "2026-12-01T10:00:00", subject="Café “quoted”", body=body)
    series = timed("2026-12-02T09:00:00", "2026-12-02T09:30:00", "Pacific Standard Time", subject="daily")
    created = [await graph.call("POST", "/me/events", json=b) for b in (single, {**series, "recurrence": DAILY})]
    assert [c.status for c in created] == [201, 201]
    return created[0].body["id"], created[1].body["id"]


async def test_listed_events_match_single_gets(graph: Graph) -> None:
    await seed(graph)
    for path in LISTINGS:
        items = await listed(graph, path, 'odata.maxpagesize=2, outlook.timezone="Europe/Paris"')
        assert items
        for event_id, item in items.items():
            one = await graph.call(
                "GET", f"/me/events/{event_id}", headers={"Prefer": 'outlook.timezone="Europe/Paris"'}
            )
            assert {k: v for k, v in one.body.items() if k != "@odata.context"} == item


async def test_edits_after_listing_are_listed_with_their_new_values(graph: Graph) -> None:
    single_id, series_id = await seed(graph)
    before = {path: await listed(graph, path) for path in LISTINGS}
    occurrence_id = sorted(i for i in before["/me/calendarView"] if i not in (single_id, series_id))[1]
    assert (await graph.call("PATCH", f"/me/events/{single_id}", json={"subject": "renamed"})).status == 200
    assert (await graph.call("PATCH", f"/me/events/{occurrence_id}", json={"subject": "moved"})).status == 200
    assert (await graph.call("PATCH", f"/me/events/{series_id}", json={"showAs": "free"})).status == 200
    for path in LISTINGS:
        after = await listed(graph, path)
        assert after[single_id]["subject"] == "renamed"
        assert after[single_id]["changeKey"] != before[path][single_id]["changeKey"]
        for event_id, item in after.items():
            assert item["showAs"] == ("free" if event_id != single_id else "busy")
        if path != "/me/events":
            assert after[occurrence_id]["subject"] == "moved" and after[occurrence_id]["type"] == "exception"


async def test_mailbox_rename_and_time_zone_are_reflected(graph: Graph, sandbox: Any) -> None:
    single_id, _ = await seed(graph)
    for path in LISTINGS:
        item = (await listed(graph, path))[single_id]
        assert item["organizer"]["emailAddress"]["address"] == graph.email
        assert item["start"] == {"dateTime": "2026-12-01T09:00:00.0000000", "timeZone": "UTC"}
    box = sandbox.halves["microsoft"].state.mailbox(graph.email)
    box.display_name, box.email = "Renamed Person", "renamed@contoso.test"
    for path in LISTINGS:
        item = (await listed(graph, path))[single_id]
        assert item["organizer"] == {"emailAddress": {"name": "Renamed Person", "address": "renamed@contoso.test"}}
        item = (await listed(graph, path, 'outlook.timezone="Pacific Standard Time"'))[single_id]
        assert item["start"] == {"dateTime": "2026-12-01T01:00:00.0000000", "timeZone": "Pacific Standard Time"}
