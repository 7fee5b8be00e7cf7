"""Recurring series (edited, cut short), the rolling window, and quarantined events."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jobs import sync
from jobs.ingest import Ingest, Mapper, map_page, sync_window
from providers.base import ChangePage, ProviderEvent, Quarantined
from providers.rules import DEFAULT_POLICY
from providers.sandbox import Sandbox
from worker.clock import ManualClock
from worker.db import quarantine
from worker.deps import Deps

from .conftest import Calendar, Connect, connect_calendar, day_start

H = timedelta(hours=1)


def _daily(cal: Calendar, start: datetime, count: int) -> dict[str, Any]:
    body = cal.timed(start)
    if cal.provider == "google":
        body["start"]["timeZone"] = body["end"]["timeZone"] = "UTC"
        return body | {"recurrence": [f"RRULE:FREQ=DAILY;COUNT={count}"]}
    pattern = {"type": "daily", "interval": 1}
    range_ = {"type": "numbered", "startDate": start.date().isoformat(), "numberOfOccurrences": count}
    return body | {"recurrence": {"pattern": pattern, "range": range_}}


def _series(cal: Calendar, start: datetime, count: int) -> dict[str, Any]:
    """The patch that moves a daily series to `start` with `count` occurrences."""
    body = _daily(cal, start, count)
    return {k: body[k] for k in ("start", "end", "recurrence")}


async def test_recurring_series_edited_and_cut_short(connect: Connect, provider: str) -> None:
    cal = await connect(provider)
    t = day_start(2) + 9 * H
    master = await cal.create(_daily(cal, t, 5))
    await sync.sync_link(cal.deps, cal.link_id)
    assert await cal.spans() == [(t + timedelta(days=i), t + timedelta(days=i) + H) for i in range(5)]

    later = t + 2 * H
    await cal.patch(master, _series(cal, later, 5))
    await sync.sync_link(cal.deps, cal.link_id)
    assert await cal.spans() == [(later + timedelta(days=i), later + timedelta(days=i) + H) for i in range(5)]

    await cal.patch(master, _series(cal, later, 2))
    outcome = await sync.sync_link(cal.deps, cal.link_id)
    assert outcome.removed == 3
    assert await cal.spans() == [(later + timedelta(days=i), later + timedelta(days=i) + H) for i in range(2)]


async def test_the_window_rolls_forward_with_a_new_baseline(deps: Deps, sandbox: Sandbox, provider: str) -> None:
    clock = ManualClock(datetime.now(UTC))
    moving = replace(deps, clock=clock)
    cal = await connect_calendar(moving, sandbox, provider)
    window = sync_window(clock.now(), deps.settings.sync)
    soon = await cal.create(cal.timed(window.start + 12 * H))  # falls out when the window moves on
    beyond = await cal.create(cal.timed(window.end + 12 * H))  # comes into the window in 3 days
    await sync.sync_link(moving, cal.link_id)
    assert [r[0] for r in await cal.rows()] == [soon]

    clock.advance(days=3)
    outcome = await sync.sync_link(moving, cal.link_id)

    assert outcome.full
    assert [r[0] for r in await cal.rows()] == [beyond]
    link = await cal.link()
    assert (link.window_start, link.window_end) == vars_of(sync_window(clock.now(), deps.settings.sync))


def vars_of(window: Any) -> tuple[datetime, datetime]:
    return window.start, window.end


async def test_quarantined_events_are_kept_counted_and_block_known_bounds(connect: Connect) -> None:
    cal = await connect("google")
    deps = cal.deps
    t = day_start(2) + 9 * H
    mapper = Mapper(ZoneInfo("UTC"), sync_window(deps.clock.now(), deps.settings.sync), DEFAULT_POLICY)
    good = ProviderEvent("good", start=t, end=t + H)
    bad = Quarantined("bad", "unreadable recurrence", {"id": "bad", "recurrence": ["RRULE:FREQ=NEVER"]}, (t, t + H))
    blind = Quarantined("", "no id", {"summary": "?"})
    page = ChangePage((good,), (bad, blind), next_cursor="c1", full_sync=True)

    async with deps.sessions() as session, session.begin():
        ingest = Ingest(session, cal.resource_id, cal.link_id, deps.clock.now(), full=True)
        await ingest.apply(map_page(page, mapper))
        tally = await ingest.finish()

    assert (tally.added, tally.quarantined) == (2, 2)
    assert await cal.rows() == [("bad", t, t + H), ("good", t, t + H)]
    async with deps.sessions() as session:
        assert await quarantine.counts(session=session, link_ids=[cal.link_id]) == {cal.link_id: 2}

    fixed = ChangePage((ProviderEvent("bad", start=t, end=t + 2 * H),), next_cursor="c2")
    async with deps.sessions() as session, session.begin():
        ingest = Ingest(session, cal.resource_id, cal.link_id, deps.clock.now(), full=False)
        await ingest.apply(map_page(fixed, mapper))
    async with deps.sessions() as session:
        assert await quarantine.counts(session=session, link_ids=[cal.link_id]) == {cal.link_id: 1}
    assert ("bad", t, t + 2 * H) in await cal.rows()


async def test_an_unreadable_event_with_a_lone_surrogate_is_still_kept(connect: Connect) -> None:
    cal = await connect("google")
    deps = cal.deps
    t = day_start(2) + 9 * H
    mapper = Mapper(ZoneInfo("UTC"), sync_window(deps.clock.now(), deps.settings.sync), DEFAULT_POLICY)
    cut = Quarantined("cut", "unreadable recurrence", {"id": "cut", "summary": "x\ud83d"}, (t, t + H))

    async with deps.sessions() as session, session.begin():  # jsonb refuses a lone surrogate
        ingest = Ingest(session, cal.resource_id, cal.link_id, deps.clock.now(), full=True)
        await ingest.apply(map_page(ChangePage((), (cut,), next_cursor="c1", full_sync=True), mapper))

    async with deps.sessions() as session:
        assert await quarantine.counts(session=session, link_ids=[cal.link_id]) == {cal.link_id: 1}
    assert await cal.rows() == [("cut", t, t + H)]
