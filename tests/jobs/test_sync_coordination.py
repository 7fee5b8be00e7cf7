"""Leases: two workers never sync one link at once; requests during a sync cause exactly one
more; dead workers' leases expire; polls follow the push-dependent cadence; JIT honours deadlines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs import sync
from providers.sandbox import Sandbox
from tests.conftest import make_deps
from worker import wakeups
from worker.config import with_overrides
from worker.db import links
from worker.db.tables import CalendarLink
from worker.deps import Deps

from .conftest import Calendar, Connect, day_start, last_seq

H = timedelta(hours=1)
LISTING = r"(/events|/calendarView/delta)$"


@pytest.fixture(autouse=True)
async def _no_faults(sandbox: Sandbox) -> AsyncIterator[None]:
    yield
    await sandbox.control.clear_faults()


@pytest.fixture
async def other_worker(deps: Deps, engine: AsyncEngine, redis: Redis, http: aiohttp.ClientSession) -> Deps:
    """A second "daemon process": same database and Redis, its own worker id."""
    return make_deps(deps.settings, engine, redis, http, worker_id="worker-b")


async def _request(cal: Calendar) -> None:
    async with cal.deps.sessions() as session, session.begin():
        await links.request_sync(session=session, now=cal.deps.clock.now(), link_ids=[cal.link_id])


async def _set(cal: Calendar, **values: object) -> None:
    async with cal.deps.sessions() as session, session.begin():
        await session.execute(update(CalendarLink).where(CalendarLink.id == cal.link_id).values(**values))


async def _settle(deps: Deps) -> None:
    """Run sweeps until nothing is due (earlier tests' links included)."""
    while (await sync.run_once(deps))["claimed"]:
        pass


async def test_two_workers_each_link_synced_by_one(
    connect: Connect, deps: Deps, other_worker: Deps, sandbox: Sandbox
) -> None:
    cals = [await connect(p) for p in ("google", "outlook") * 3]
    for cal in cals:
        await cal.create(cal.timed(day_start(2) + 9 * H))
    await _settle(deps)
    for cal in cals:
        await cal.create(cal.timed(day_start(3) + 9 * H))
        await _request(cal)
    await sandbox.control.add_fault(path=LISTING, latency_ms=150)
    since = await last_seq(sandbox)

    # sweep_seconds is also the least gap between background syncs of a link: none here.
    small = with_overrides(deps.settings, sync={"concurrency": 2, "sweep_seconds": 0.001})
    workers = [replace(deps, settings=small), replace(other_worker, settings=small)]

    synced = await asyncio.gather(*(_drain(w) for w in workers))

    # Every link synced exactly once between the two (which worker took how many depends on timing).
    assert sum(synced) == len(cals)
    for cal in cals:
        assert len(await cal.api_requests(since)) == 1, cal.provider  # one incremental sync, by one worker
        assert len(await cal.rows()) == 2
        assert (await cal.link()).lease_owner is None


async def _drain(worker: Deps) -> int:
    synced = 0
    while counts := await sync.run_once(worker):
        if not counts["claimed"]:
            return synced
        synced += counts.get("synced", 0)
    return synced


async def test_a_held_lease_is_not_taken_and_an_expired_one_is(
    connect: Connect, deps: Deps, other_worker: Deps
) -> None:
    cal = await connect("google")
    await _settle(deps)
    now = deps.clock.now()
    await _set(cal, lease_owner="dead-worker", lease_expires_at=now + timedelta(seconds=30))
    await _request(cal)

    assert (await sync.sync_link(other_worker, cal.link_id)).status == "skipped"
    assert (await sync.run_once(other_worker))["claimed"] == 0

    await _set(cal, lease_expires_at=now - timedelta(seconds=1), sync_requested_at=None)
    counts = await sync.run_once(other_worker)  # the dead worker's sync is due again at once
    assert counts.get("synced") == 1 and (await cal.link()).lease_owner is None


async def test_requests_during_a_sync_cause_exactly_one_more(connect: Connect, deps: Deps, sandbox: Sandbox) -> None:
    cal = await connect("outlook")
    await _settle(deps)
    await sandbox.control.add_fault(path=LISTING, latency_ms=400, count=1)
    running = asyncio.create_task(sync.sync_link(deps, cal.link_id))
    await _until(lambda: _leased(cal))
    for _ in range(5):
        await _request(cal)
    assert (await running).status == "synced"

    link = await cal.link()
    assert link.sync_requested_at is not None and link.lease_owner is None
    synced = 0
    deadline = time.monotonic() + 5  # background follow-ups wait out sync.sweep_seconds
    while time.monotonic() < deadline and not synced:
        synced = (await sync.run_once(deps)).get("synced", 0)
    assert synced == 1
    await asyncio.sleep(deps.settings.sync.sweep_seconds * 2)
    assert (await sync.run_once(deps))["claimed"] == 0


async def _leased(cal: Calendar) -> bool:
    return (await cal.link()).lease_owner is not None


async def _until(predicate: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_poll_cadence_depends_on_push_health(connect: Connect, deps: Deps) -> None:
    poll, reconcile = deps.settings.sync.poll_seconds, deps.settings.sync.reconcile_seconds
    no_push, push = await connect("google"), await connect("outlook")
    await _settle(deps)
    now = deps.clock.now()
    await _set(no_push, last_synced_at=now - timedelta(seconds=poll + 1))
    await _set(push, last_synced_at=now - timedelta(seconds=poll + 1), push_expires_at=now + H)

    assert (await sync.run_once(deps))["claimed"] == 1
    assert (await no_push.link()).last_synced_at > now  # type: ignore[operator]

    await _set(push, last_synced_at=now - timedelta(seconds=reconcile + 1))
    assert (await sync.run_once(deps))["claimed"] == 1
    assert (await push.link()).last_synced_at > now  # type: ignore[operator]


async def test_sync_resource_answers_by_its_deadline(connect: Connect, deps: Deps, sandbox: Sandbox) -> None:
    cal = await connect("google")
    await _settle(deps)
    event = await cal.create(cal.timed(day_start(2) + 9 * H))
    await sandbox.control.add_fault(path=LISTING, latency_ms=1500, count=1)

    started = time.monotonic()
    results = await sync.sync_resource(deps, cal.resource_id, deadline=0.2)

    assert time.monotonic() - started < 1.0
    assert [(r.link_id, r.status) for r in results] == [(cal.link_id, "pending")]
    await _until(lambda: _has_rows(cal), within=5)  # it finishes in the background
    assert [r[0] for r in await cal.rows()] == [event]

    await cal.delete(event)
    results = await sync.sync_resource(deps, cal.resource_id, deadline=5)
    assert [(r.status, r.changed) for r in results] == [("synced", True)] and await cal.rows() == []


async def _has_rows(cal: Calendar) -> bool:
    return bool(await cal.rows())


async def test_a_request_storm_costs_a_handful_of_syncs(connect: Connect, deps: Deps, sandbox: Sandbox) -> None:
    cal = await connect("google")
    await _settle(deps)
    slow = replace(deps, settings=with_overrides(deps.settings, sync={"sweep_seconds": 0.25}))
    since = await last_seq(sandbox)
    sweeping = asyncio.create_task(sync.sweep(slow, seconds=1.5))
    for _ in range(100):  # a push storm: a request and a wake-up every 10 ms for a second
        await _request(cal)
        await wakeups.wake(deps.redis, deps.prefix)
        await asyncio.sleep(0.01)
    await sweeping
    await _until(lambda: _served(slow, cal))  # the last request is served too

    syncs = len(await cal.api_requests(since))
    assert 2 <= syncs <= 10  # about one per sweep interval, not one per request


async def _served(deps: Deps, cal: Calendar) -> bool:
    await sync.run_once(deps)
    return (await cal.link()).sync_requested_at is None
