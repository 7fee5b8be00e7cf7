"""calendarView/delta in the sandbox: rounds, replays, @removed entries and dead tokens."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.sandbox.test_microsoft_support import WINDOW, Graph, new_graph, timed

DELTA = "/me/calendarView/delta"


@pytest.fixture
async def graph(sandbox: Any) -> AsyncIterator[Graph]:
    """A Graph caller for a fresh mailbox."""
    caller = await new_graph(sandbox)
    yield caller
    await caller.close()


async def full_round(
    graph: Graph, first: str, params: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Follow nextLinks to the deltaLink; returns (items, deltaLink)."""
    headers = {"Prefer": "odata.maxpagesize=2"}
    reply = await graph.call("GET", first, params=params, headers=headers)
    items: list[dict[str, Any]] = []
    while True:
        assert reply.status == 200, reply.body
        items += reply.body["value"]
        if "@odata.deltaLink" in reply.body:
            assert "@odata.nextLink" not in reply.body
            return items, reply.body["@odata.deltaLink"]
        assert "$skiptoken=" in reply.body["@odata.nextLink"]
        reply = await graph.call("GET", reply.body["@odata.nextLink"], headers=headers)


async def make(graph: Graph, subject: str, day: int = 1, **extra: Any) -> dict[str, Any]:
    body = timed(f"2026-12-{day:02d}T09:00:00", f"2026-12-{day:02d}T10:00:00", subject=subject, **extra)
    reply = await graph.call("POST", "/me/events", json=body)
    assert reply.status == 201
    return dict(reply.body)


async def test_initial_round_pages_and_expands(graph: Graph) -> None:
    await make(graph, "single")
    weekly = {
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "numbered", "startDate": "2026-12-02", "numberOfOccurrences": 3},
    }
    await make(graph, "daily", 2, recurrence=weekly)
    items, link = await full_round(graph, DELTA, WINDOW)
    assert sorted((i["type"], i["subject"]) for i in items) == [
        ("occurrence", "daily"),
        ("occurrence", "daily"),
        ("occurrence", "daily"),
        ("singleInstance", "single"),
    ]
    assert "$deltatoken=" in link and link.startswith("http://127.0.0.1:")


async def test_replay_returns_only_changes_since(graph: Graph, sandbox: Any) -> None:
    keep = await make(graph, "keep", 1)
    change = await make(graph, "change", 2)
    drop = await make(graph, "drop", 3)
    _, link = await full_round(graph, DELTA, WINDOW)
    quiet, link_again = await full_round(graph, link)
    assert quiet == [] and link_again

    await graph.call("PATCH", f"/me/events/{change['id']}", json={"subject": "changed"})
    await graph.call("DELETE", f"/me/events/{drop['id']}")
    added = await sandbox.control.create_event(
        "microsoft",
        graph.email,
        timed("2026-12-04T09:00:00", "2026-12-04T10:00:00", subject="added"),
    )
    items, next_link = await full_round(graph, link)
    by_id = {i["id"]: i for i in items}
    assert keep["id"] not in by_id
    assert by_id[change["id"]]["subject"] == "changed"
    assert by_id[drop["id"]] == {
        "@odata.type": "#microsoft.graph.event",
        "id": drop["id"],
        "@removed": {"reason": "deleted"},
    }
    assert by_id[added["id"]]["subject"] == "added"

    # A delta link can be replayed again: it still yields the same changes.
    again, _ = await full_round(graph, link)
    assert {i["id"] for i in again} == set(by_id)
    assert (await full_round(graph, next_link))[0] == []


async def test_out_of_window_changes_yield_removed(graph: Graph) -> None:
    inside = await make(graph, "inside", 5)
    _, link = await full_round(graph, DELTA, WINDOW)
    outside = await graph.call("POST", "/me/events", json=timed("2027-03-01T09:00:00", "2027-03-01T10:00:00"))
    await graph.call(
        "PATCH",
        f"/me/events/{inside['id']}",
        json=timed("2027-02-01T09:00:00", "2027-02-01T10:00:00"),
    )
    items, _ = await full_round(graph, link)
    assert sorted(i["id"] for i in items) == sorted([outside.body["id"], inside["id"]])
    assert all(i["@removed"] == {"reason": "deleted"} for i in items)


async def test_cancelled_occurrence_is_removed(graph: Graph) -> None:
    daily = {
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "numbered", "startDate": "2026-12-02", "numberOfOccurrences": 3},
    }
    await make(graph, "daily", 2, recurrence=daily)
    items, link = await full_round(graph, DELTA, WINDOW)
    victim = sorted(items, key=lambda i: i["start"]["dateTime"])[1]
    assert (await graph.call("DELETE", f"/me/events/{victim['id']}")).status == 204
    changed, _ = await full_round(graph, link)
    removed = [i["id"] for i in changed if "@removed" in i]
    assert removed == [victim["id"]]
    assert all(i["type"] == "occurrence" for i in changed if "@removed" not in i)


async def test_invalidated_tokens_fail_with_sync_state_not_found(graph: Graph, sandbox: Any) -> None:
    for day in range(1, 6):
        await make(graph, f"e{day}", day)
    _, link = await full_round(graph, DELTA, WINDOW)
    first_page = await graph.call("GET", DELTA, params=WINDOW, headers={"Prefer": "odata.maxpagesize=2"})
    skip_link = first_page.body["@odata.nextLink"]
    await sandbox.control.invalidate_cursors("microsoft", graph.email)
    for dead in (link, skip_link):
        reply = await graph.call("GET", dead)
        assert reply.status == 410
        assert reply.body["error"]["code"] == "SyncStateNotFound"
    fresh, _ = await full_round(graph, DELTA, WINDOW)
    assert len(fresh) == 5


async def test_garbage_token_is_sync_state_not_found(graph: Graph) -> None:
    reply = await graph.call("GET", DELTA, params={"$deltatoken": "not-a-token"})
    assert reply.status == 410 and reply.body["error"]["code"] == "SyncStateNotFound"


async def test_per_calendar_delta_paths(graph: Graph, sandbox: Any) -> None:
    work = await sandbox.control.add_calendar("microsoft", graph.email, "Work")
    await graph.call(
        "POST",
        f"/me/calendars/{work['id']}/events",
        json=timed("2026-12-01T09:00:00", "2026-12-01T10:00:00", subject="w"),
    )
    await make(graph, "default")
    work_items, _ = await full_round(graph, f"/me/calendars/{work['id']}/calendarView/delta", WINDOW)
    default_items, _ = await full_round(graph, "/me/calendar/calendarView/delta", WINDOW)
    assert [i["subject"] for i in work_items] == ["w"]
    assert [i["subject"] for i in default_items] == ["default"]


async def test_timezone_preference_applies_to_delta(graph: Graph) -> None:
    await make(graph, "tz")
    reply = await graph.call(
        "GET", DELTA, params=WINDOW, headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'}
    )
    (item,) = reply.body["value"]
    assert item["start"] == {
        "dateTime": "2026-12-01T01:00:00.0000000",
        "timeZone": "Pacific Standard Time",
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_mirror_fed_by_delta_converges_to_calendar_view(graph: Graph, seed: int) -> None:
    """A client applying delta pages (upserts, @removed deletes) ends up holding calendarView."""
    rng = random.Random(seed)
    mirror: dict[str, dict[str, Any]] = {}
    link = DELTA + "?" + "&".join(f"{k}={v}" for k, v in WINDOW.items())
    for _ in range(6):
        await _random_edits(graph, rng)
        items, link = await full_round(graph, link)
        for item in items:
            if "@removed" in item:
                mirror.pop(item["id"], None)
            else:
                mirror[item["id"]] = item
    truth = await graph.call("GET", "/me/calendarView", params={**WINDOW, "$top": "1000"})
    assert {i["id"]: i["changeKey"] for i in truth.body["value"]} == {k: v["changeKey"] for k, v in mirror.items()}


async def _random_edits(graph: Graph, rng: random.Random) -> None:
    """A few creates, moves (in and out of the window), occurrence edits and deletes."""
    for _ in range(rng.randint(1, 4)):
        view = (await graph.call("GET", "/me/calendarView", params={**WINDOW, "$top": "1000"})).body["value"]
        singles = [e for e in (await graph.call("GET", "/me/events", params={"$top": "1000"})).body["value"]]
        action = rng.choice(["create", "series", "move", "edit_occurrence", "delete", "delete_occurrence"])
        day = rng.randint(1, 40)  # days past 1 Dec 2026; the window ends 1 Jan 2027
        when = datetime(2026, 12, 1, 9, tzinfo=UTC) + timedelta(days=day)
        times = timed(f"{when:%Y-%m-%dT%H:%M:%S}", f"{when + timedelta(hours=1):%Y-%m-%dT%H:%M:%S}")
        if action == "create":
            await graph.call("POST", "/me/events", json=times)
        elif action == "series":
            daily = {
                "pattern": {"type": "daily", "interval": rng.randint(1, 3)},
                "range": {
                    "type": "numbered",
                    "startDate": f"{when:%Y-%m-%d}",
                    "numberOfOccurrences": rng.randint(2, 6),
                },
            }
            await graph.call("POST", "/me/events", json={**times, "recurrence": daily})
        elif action == "move" and singles:
            await graph.call("PATCH", f"/me/events/{rng.choice(singles)['id']}", json=times)
        elif action == "delete" and singles:
            await graph.call("DELETE", f"/me/events/{rng.choice(singles)['id']}")
        occurrences = [i for i in view if i["type"] in ("occurrence", "exception")]
        if action == "edit_occurrence" and occurrences:
            await graph.call("PATCH", f"/me/events/{rng.choice(occurrences)['id']}", json={"subject": "x", **times})
        elif action == "delete_occurrence" and occurrences:
            await graph.call("DELETE", f"/me/events/{rng.choice(occurrences)['id']}")
