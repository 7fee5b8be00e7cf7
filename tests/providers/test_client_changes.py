"""Both clients' change feeds against the sandbox: paging, full → incremental, expired cursors."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from providers.base import ChangePage
from providers.errors import CursorExpiredError
from providers.sandbox import Sandbox
from tests.waiting import until

from .conftest import WINDOW, Account, MakeAccount

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def pages(acct: Account, cursor: str | None) -> list[ChangePage]:
    return [page async for page in acct.client.list_changes(acct.calendar_id, cursor, WINDOW)]


async def api_requests(sandbox: Sandbox, provider: str, since: int = 0) -> list[dict]:
    return [r for r in await sandbox.control.requests(provider, since) if "/token" not in r["path"]]


async def last_seq(sandbox: Sandbox) -> int:
    return max((r["seq"] for r in await sandbox.control.requests()), default=0)


async def test_full_sync_pages_and_cursor_only_on_the_last_page(
    sandbox: Sandbox, account: MakeAccount, provider: str
) -> None:
    acct = await account(provider, page_size=40)
    events = [acct.event(T0 + timedelta(hours=i), title=f"e{i}") for i in range(100)]
    assert await sandbox.control.bulk_load(provider, acct.email, events, acct.calendar_id) == 100

    result = await pages(acct, None)

    assert len(result) >= 3
    assert all(p.full_sync for p in result)
    assert [p.next_cursor is not None for p in result] == [False] * (len(result) - 1) + [True]
    seen = [e for p in result for e in p.events]
    assert len({e.id for e in seen}) == 100
    assert sorted(e.summary or "" for e in seen) == sorted(f"e{i}" for i in range(100))
    assert all(e.start.tzinfo is not None and not e.removed for e in seen)  # type: ignore[union-attr]


async def test_the_next_page_is_requested_while_this_one_is_used(
    sandbox: Sandbox, account: MakeAccount, provider: str
) -> None:
    """Read-ahead: the provider serves page 2 while page 1 is stored; a reader that stops
    early leaves no request behind (page 3 is never asked for)."""
    acct = await account(provider, page_size=10)
    events = [acct.event(T0 + timedelta(hours=i), title=f"e{i}") for i in range(30)]
    await sandbox.control.bulk_load(provider, acct.email, events, acct.calendar_id)
    since = await last_seq(sandbox)
    listing = acct.client.list_changes(acct.calendar_id, None, WINDOW)

    first = await anext(listing)

    assert len(first.events) == 10

    async def page_two_requested() -> bool:
        return len(await api_requests(sandbox, provider, since)) >= 2

    await until(page_two_requested, within=5, what="page 2 to be requested ahead")  # on its own
    await listing.aclose()
    await acct.client.list_calendars()  # a marker: whatever the listing sent went out before it

    seen = await api_requests(sandbox, provider, since)
    marker = next(i for i, r in enumerate(seen) if "/events" not in r["path"] and "/delta" not in r["path"])
    assert marker == 2  # pages 1 and 2, and never page 3


async def test_incremental_sync_returns_only_changes(sandbox: Sandbox, account: MakeAccount, provider: str) -> None:
    acct = await account(provider)
    keep = await sandbox.control.create_event(provider, acct.email, acct.event(T0, title="keep"), acct.calendar_id)
    move = await sandbox.control.create_event(provider, acct.email, acct.event(T0, title="move"), acct.calendar_id)
    drop = await sandbox.control.create_event(provider, acct.email, acct.event(T0, title="drop"), acct.calendar_id)
    cursor = (await pages(acct, None))[-1].next_cursor
    assert cursor

    new = await sandbox.control.create_event(
        provider, acct.email, acct.event(T0 + timedelta(days=1), title="new"), acct.calendar_id
    )
    moved_start = T0 + timedelta(days=2)
    patch = acct.event(moved_start, title="move")
    await sandbox.control.patch_event(
        provider,
        acct.email,
        move["id"],
        {"start": patch["start"], "end": patch["end"]},
        acct.calendar_id,
    )
    await sandbox.control.delete_event(provider, acct.email, drop["id"], acct.calendar_id)

    result = await pages(acct, cursor)

    assert not any(p.full_sync for p in result) and result[-1].next_cursor not in (None, cursor)
    changed = {e.id: e for p in result for e in p.events}
    assert keep["id"] not in changed
    assert changed[new["id"]].summary == "new" and not changed[new["id"]].removed
    assert changed[move["id"]].start == moved_start
    assert changed[drop["id"]].removed


async def test_no_change_incremental_sync_is_one_round_trip(
    sandbox: Sandbox, account: MakeAccount, provider: str
) -> None:
    acct = await account(provider)
    await sandbox.control.create_event(provider, acct.email, acct.event(T0), acct.calendar_id)
    cursor = (await pages(acct, None))[-1].next_cursor
    since = await last_seq(sandbox)

    result = await pages(acct, cursor)

    assert len(result) == 1 and result[0].events == () and result[0].next_cursor
    assert len(await api_requests(sandbox, provider, since)) == 1


async def test_invalidated_cursor_raises_cursor_expired(sandbox: Sandbox, account: MakeAccount, provider: str) -> None:
    acct = await account(provider)
    await sandbox.control.create_event(provider, acct.email, acct.event(T0), acct.calendar_id)
    cursor = (await pages(acct, None))[-1].next_cursor
    await sandbox.control.invalidate_cursors(provider, acct.email)

    with pytest.raises(CursorExpiredError):
        await pages(acct, cursor)
    # The way back is a new full sync, which works at once.
    assert len([e for p in await pages(acct, None) for e in p.events]) == 1


async def test_all_day_and_free_events_keep_their_meaning(
    sandbox: Sandbox, account: MakeAccount, provider: str
) -> None:
    acct = await account(provider)
    if provider == "google":
        all_day = {
            "summary": "holiday",
            "start": {"date": "2026-12-24"},
            "end": {"date": "2026-12-25"},
        }
        free = {**acct.event(T0, title="free"), "transparency": "transparent"}
    else:
        all_day = {
            "subject": "holiday",
            "isAllDay": True,
            "start": {"dateTime": "2026-12-24T00:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-25T00:00:00", "timeZone": "UTC"},
        }
        free = {**acct.event(T0, title="free"), "showAs": "free"}
    for body in (all_day, free):
        await sandbox.control.create_event(provider, acct.email, body, acct.calendar_id)

    events = {e.summary: e for p in await pages(acct, None) for e in p.events}

    holiday = events["holiday"]
    assert holiday.all_day and (holiday.start, holiday.end) == (
        datetime(2026, 12, 24).date(),
        datetime(2026, 12, 25).date(),
    )
    assert events["free"].show_as == "free"


async def test_recurring_series_arrive_as_instances(sandbox: Sandbox, account: MakeAccount, provider: str) -> None:
    acct = await account(provider)
    if provider == "google":
        body = {
            "summary": "daily",
            "start": {"dateTime": "2026-12-01T09:00:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2026-12-01T10:00:00", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=5"],
        }
    else:
        body = {
            **acct.event(T0, title="daily"),
            "recurrence": {
                "pattern": {"type": "daily", "interval": 1},
                "range": {"type": "numbered", "startDate": "2026-12-01", "numberOfOccurrences": 5},
            },
        }
    master = await sandbox.control.create_event(provider, acct.email, body, acct.calendar_id)

    instances = [e for p in await pages(acct, None) for e in p.events]

    assert len(instances) == 5
    assert {e.series_id for e in instances} == {master["id"]}
    assert len({e.id for e in instances}) == 5
    starts = sorted(e.start for e in instances)  # type: ignore[type-var]
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(starts))


async def test_list_calendars_includes_added_calendars(sandbox: Sandbox, account: MakeAccount, provider: str) -> None:
    acct = await account(provider)
    extra = await sandbox.control.add_calendar(provider, acct.email, "Team")

    calendars = {c.id: c for c in await acct.client.list_calendars()}

    assert calendars[acct.calendar_id].primary and calendars[acct.calendar_id].can_write
    assert calendars[extra["id"]].name == "Team" and not calendars[extra["id"]].primary


async def test_second_calendar_syncs_separately(sandbox: Sandbox, account: MakeAccount, provider: str) -> None:
    acct = await account(provider)
    extra = await sandbox.control.add_calendar(provider, acct.email, "Team")
    await sandbox.control.create_event(provider, acct.email, acct.event(T0, title="team"), extra["id"])
    await sandbox.control.create_event(provider, acct.email, acct.event(T0, title="mine"), acct.calendar_id)

    other = replace(acct, calendar_id=extra["id"])
    assert [e.summary for p in await pages(other, None) for e in p.events] == ["team"]


async def test_an_event_with_a_lone_surrogate_in_its_title_still_syncs(
    sandbox: Sandbox, account: MakeAccount, provider: str
) -> None:
    acct = await account(provider)
    cut = await sandbox.control.create_event(provider, acct.email, acct.event(T0, title="x\ud83d"), acct.calendar_id)
    plain = await sandbox.control.create_event(provider, acct.email, acct.event(T0, title="plain"), acct.calendar_id)

    result = await pages(acct, None)

    listed = {e.id: e.summary for p in result for e in p.events}
    assert listed == {cut["id"]: "x\ud83d", plain["id"]: "plain"}
    assert not any(p.quarantined for p in result) and result[-1].next_cursor
