"""Calendar edits at the provider end up exactly in unavailability after a sync (both providers)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from jobs import sync
from worker.cache import current_version
from worker.db.tables import Unavailability

from .conftest import Calendar, Connect, day_start, last_seq

H = timedelta(hours=1)


async def test_first_sync_is_full_and_stores_busy_events(connect: Connect, provider: str) -> None:
    cal = await connect(provider)
    t = day_start(2) + 9 * H
    a = await cal.create(cal.timed(t))
    b = await cal.create(cal.timed(t + 3 * H, minutes=30))

    outcome = await sync.sync_link(cal.deps, cal.link_id)

    assert outcome.status == "synced" and outcome.full and outcome.added == 2
    assert await cal.rows() == [(a, t, t + H), (b, t + 3 * H, t + 3 * H + timedelta(minutes=30))]
    link = await cal.link()
    assert link.sync_cursor and link.last_synced_at and link.lease_owner is None
    assert link.window_start is not None and link.consecutive_failures == 0


async def test_moves_deletes_free_and_declined_are_reflected(connect: Connect, provider: str) -> None:
    cal = await connect(provider)
    t = day_start(3) + 9 * H
    ids = [await cal.create(cal.timed(t + i * 2 * H)) for i in range(4)]
    await sync.sync_link(cal.deps, cal.link_id)
    moved_to = day_start(4) + 14 * H

    await cal.patch(ids[0], cal.moved(moved_to, 90))
    await cal.delete(ids[1])
    await cal.patch(ids[2], cal.free())
    await cal.patch(ids[3], cal.declined())
    new = await cal.create(cal.timed(day_start(5) + 8 * H))
    outcome = await sync.sync_link(cal.deps, cal.link_id)

    assert outcome.status == "synced" and not outcome.full
    assert (outcome.added, outcome.updated, outcome.removed) == (1, 1, 3)
    assert await cal.rows() == [
        (ids[0], moved_to, moved_to + 1.5 * H),
        (new, day_start(5) + 8 * H, day_start(5) + 9 * H),
    ]


async def test_all_day_blocks_whole_days_in_the_resource_zone(connect: Connect, provider: str) -> None:
    cal = await connect(provider, timezone="Europe/Berlin")
    first = day_start(6).date()
    await cal.create(cal.all_day(first, days=2))

    await sync.sync_link(cal.deps, cal.link_id)

    berlin = ZoneInfo("Europe/Berlin")
    midnight = datetime.combine(first, time(), berlin)
    assert await cal.spans() == [(midnight, datetime.combine(first + timedelta(days=2), time(), berlin))]


async def test_no_change_incremental_is_one_request_and_no_writes(connect: Connect, provider: str) -> None:
    cal = await connect(provider)
    await cal.create(cal.timed(day_start(2) + 10 * H))
    await sync.sync_link(cal.deps, cal.link_id)
    version = await current_version(cal.deps.redis, cal.deps.prefix, cal.resource_id)
    synced_before = await _synced_at(cal)
    since = await last_seq(cal.sandbox)

    outcome = await sync.sync_link(cal.deps, cal.link_id)

    assert outcome.status == "synced" and not outcome.changed and not outcome.full
    assert len(await cal.api_requests(since)) == 1
    assert await _synced_at(cal) == synced_before  # no row was rewritten
    assert await current_version(cal.deps.redis, cal.deps.prefix, cal.resource_id) == version


async def test_cache_version_bumps_only_when_rows_change(connect: Connect, provider: str) -> None:
    cal = await connect(provider)
    event = await cal.create(cal.timed(day_start(2) + 10 * H))
    await sync.sync_link(cal.deps, cal.link_id)
    v1 = await current_version(cal.deps.redis, cal.deps.prefix, cal.resource_id)
    assert v1 >= 1

    await cal.patch(event, {"summary": "renamed"} if provider == "google" else {"subject": "renamed"})
    await sync.sync_link(cal.deps, cal.link_id)
    assert await current_version(cal.deps.redis, cal.deps.prefix, cal.resource_id) == v1

    await cal.patch(event, cal.moved(day_start(2) + 11 * H))
    await sync.sync_link(cal.deps, cal.link_id)
    assert await current_version(cal.deps.redis, cal.deps.prefix, cal.resource_id) == v1 + 1


async def _synced_at(cal: Calendar) -> list[object]:
    async with cal.deps.sessions() as session:
        stmt = select(Unavailability.synced_at).where(Unavailability.link_id == cal.link_id)
        return sorted((await session.execute(stmt)).scalars().all())
