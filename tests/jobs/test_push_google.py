"""Google watch channels end to end: the sandbox really POSTs to our served webhook."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs import push, sync
from providers.sandbox import Sandbox
from tests.jobs.push_env import Linked, PushEnv, linked, push_env
from tests.waiting import until
from worker.clock import ManualClock
from worker.config import Settings
from worker.db.push import AWAITING_FIRST_MESSAGE
from worker.db.tables import Unavailability


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest.fixture(scope="module")
async def env(
    settings: Settings,
    engine: AsyncEngine,
    redis: Redis,
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
    clock: ManualClock,
) -> AsyncIterator[PushEnv]:
    async with push_env(settings, engine, redis, http, sandbox, clock=clock) as e:
        yield e


async def _messages(env: PushEnv, channel_id: str | None, state: str = "exists") -> int:
    """How many `state` messages the sandbox delivered for a channel."""
    await env.sandbox.control.drain()
    return sum(
        1
        for d in await env.sandbox.control.deliveries("google")
        if d["headers"].get("X-Goog-Channel-ID") == channel_id and d["headers"].get("X-Goog-Resource-State") == state
    )


async def _handshake(cal: Linked) -> None:
    async def proven() -> bool:
        row = await cal.row()
        return row.push_last_message_at is not None and row.push_error is None

    await until(proven, what="the channel's sync message")


async def _serve_requests(env: PushEnv) -> None:
    """Run the sync engine once, past the least gap it keeps between two requested syncs."""
    assert isinstance(env.deps.clock, ManualClock)
    env.deps.clock.advance(seconds=env.deps.settings.sync.sweep_seconds + 1)
    await sync.run_once(env.deps)


async def _requested(cal: Linked) -> bool:
    return (await cal.row()).sync_requested_at is not None


async def test_open_channel_then_change_reaches_unavailability_without_poll(env: PushEnv) -> None:
    cal = await linked(env, "google")

    outcome = await push.ensure_push(env.deps, cal.link_id)

    assert outcome.status == "opened"
    row = await cal.row()
    assert row.push_kind == "google_channel" and row.push_id and len(row.push_id) <= 64
    assert row.push_resource_id and row.push_secret_hash and len(row.push_secret_hash) == 64
    now = env.deps.clock.now()
    assert row.push_expires_at and timedelta(days=6) < row.push_expires_at - now <= timedelta(days=7, minutes=1)
    life = row.push_expires_at - now
    assert row.push_renew_at and now + life * 0.5 < row.push_renew_at < now + life * 0.7
    await _handshake(cal)
    assert row.sync_requested_at is None  # the sync message asks for nothing
    assert (await push.ensure_push(env.deps, cal.link_id)).status == "fresh"  # not due: no second channel
    assert (await sync.sync_link(env.deps, cal.link_id)).status == "synced"

    synced_before = (await cal.row()).last_synced_at
    await cal.add_event("2030-01-07T10:00:00Z", "2030-01-07T11:00:00Z")
    await until(lambda: _requested(cal), what="a sync request from the channel message")
    await _serve_requests(env)

    row = await cal.row()
    assert row.sync_requested_at is None and row.last_synced_at and synced_before
    assert row.last_synced_at >= synced_before


async def test_change_inside_window_becomes_a_busy_row(env: PushEnv) -> None:
    cal = await linked(env, "google")
    await sync.sync_link(env.deps, cal.link_id)
    await push.ensure_push(env.deps, cal.link_id)
    await _handshake(cal)
    assert await _requested(cal)  # push opened after a sync: catch up on the gap between them
    await _serve_requests(env)
    assert not await _requested(cal)
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    end = start + timedelta(hours=1)

    event_id = await cal.add_event(start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ"))
    await until(lambda: _requested(cal), what="a sync request")
    await _serve_requests(env)

    async with env.deps.sessions() as session:
        stmt = select(Unavailability.provider_event_id, Unavailability.start_at).where(
            Unavailability.link_id == cal.link_id
        )
        rows = (await session.execute(stmt)).all()
    assert [(r[0], r[1]) for r in rows] == [(event_id, start)]


async def test_renewal_opens_new_channel_then_stops_old(env: PushEnv, clock: ManualClock) -> None:
    cal = await linked(env, "google")
    await push.ensure_push(env.deps, cal.link_id)
    await _handshake(cal)
    old = await cal.row()

    assert old.push_renew_at is not None
    clock.advance(seconds=(old.push_renew_at - clock.now()).total_seconds() + 1)
    counts = await push.run_once(env.deps)

    assert counts.get("renewed", 0) >= 1
    new = await cal.row()
    assert new.push_id != old.push_id and new.push_secret_hash != old.push_secret_hash
    assert new.push_renew_at is not None and new.push_renew_at > clock.now()
    await _handshake(cal)
    await cal.set(sync_requested_at=None)
    await cal.add_event("2030-02-07T10:00:00Z", "2030-02-07T11:00:00Z")
    await until(lambda: _requested(cal), what="a sync request through the new channel")
    assert await _messages(env, new.push_id) == 1
    assert await _messages(env, old.push_id) == 0  # the old channel was stopped


async def test_failed_renewal_keeps_old_channel_records_error_and_retries(env: PushEnv, clock: ManualClock) -> None:
    cal = await linked(env, "google")
    await push.ensure_push(env.deps, cal.link_id)
    await _handshake(cal)
    old = await cal.row()
    assert old.push_renew_at is not None
    clock.advance(seconds=(old.push_renew_at - clock.now()).total_seconds() + 1)
    path = f"/calendars/{cal.calendar_id}/events/watch".replace("@", "(@|%40)")
    await env.sandbox.control.add_fault(provider="google", method="POST", path=path, status=503, count=50)
    try:
        outcome = await push.ensure_push(env.deps, cal.link_id)
    finally:
        await env.sandbox.control.clear_faults()

    assert outcome.status == "failed"
    row = await cal.row()
    assert row.push_id == old.push_id and row.push_secret_hash == old.push_secret_hash  # old channel still valid
    assert row.push_error and "Unavailable" in row.push_error and row.push_failures == 1
    assert row.push_renew_at is not None and row.push_renew_at >= clock.now()
    await cal.set(sync_requested_at=None)
    await cal.add_event("2030-03-07T10:00:00Z", "2030-03-07T11:00:00Z")
    await until(lambda: _requested(cal), what="the old channel still delivering")

    clock.advance(seconds=(row.push_renew_at - clock.now()).total_seconds() + 1)
    assert (await push.ensure_push(env.deps, cal.link_id)).status == "renewed"
    await _handshake(cal)
    row = await cal.row()
    assert row.push_failures == 0 and row.push_error is None and row.push_id != old.push_id


async def test_deselected_link_has_its_channel_stopped(env: PushEnv) -> None:
    cal = await linked(env, "google")
    await push.ensure_push(env.deps, cal.link_id)
    await _handshake(cal)
    old = await cal.row()

    await cal.set(read=False)
    counts = await push.run_once(env.deps)

    assert counts.get("stopped", 0) >= 1
    row = await cal.row()
    assert row.push_id is None and row.push_kind is None and row.push_secret_hash is None
    await cal.add_event("2030-05-07T10:00:00Z", "2030-05-07T11:00:00Z")
    assert await _messages(env, old.push_id) == 0
    assert (await push.ensure_push(env.deps, cal.link_id)).status == "fresh"  # nothing more to do


async def test_disconnect_hook_stops_the_channel(env: PushEnv) -> None:
    from jobs import connect

    cal = await linked(env, "google")
    await push.ensure_push(env.deps, cal.link_id)
    await _handshake(cal)
    old = await cal.row()

    assert push.stop_for_connection in connect.DISCONNECT_HOOKS
    assert await connect.disconnect(env.deps, cal.connection_id, wait=True)

    await cal.add_event("2030-06-07T10:00:00Z", "2030-06-07T11:00:00Z")
    assert await _messages(env, old.push_id) == 0


async def test_sweep_opens_push_for_every_read_link(env: PushEnv) -> None:
    cals = [await linked(env, "google") for _ in range(3)]

    await push.run_once(env.deps)

    for cal in cals:
        row = await cal.row()
        assert row.push_kind == "google_channel" and row.push_resource_id
        await _handshake(cal)


async def test_a_lost_sync_message_leaves_the_channel_unproven(env: PushEnv) -> None:
    cal = await linked(env, "google")
    await env.sandbox.control.delivery("google", drop=1)
    await push.ensure_push(env.deps, cal.link_id)
    await env.sandbox.control.drain()

    row = await cal.row()
    assert row.push_error == AWAITING_FIRST_MESSAGE  # polled as if push were down
    await cal.add_event("2030-04-07T10:00:00Z", "2030-04-07T11:00:00Z")
    await until(lambda: _requested(cal), what="a sync request")
    assert (await cal.row()).push_error is None  # any authentic message proves the channel


def test_secret_is_stored_as_sha256() -> None:
    assert push.secret_hash("abc") == hashlib.sha256(b"abc").hexdigest()


async def test_a_lost_notification_still_converges_through_the_reconciliation_poll(
    env: PushEnv, clock: ManualClock
) -> None:
    cal = await linked(env, "google")
    await push.ensure_push(env.deps, cal.link_id)
    await _handshake(cal)
    await sync.sync_link(env.deps, cal.link_id)
    await cal.set(sync_requested_at=None)
    start = (clock.now() + timedelta(days=1)).replace(microsecond=0)
    await env.sandbox.control.delivery("google", drop=1)

    event_id = await cal.add_event(
        start.strftime("%Y-%m-%dT%H:%M:%SZ"), (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    await env.sandbox.control.drain()

    assert not await _requested(cal)  # the message was lost
    clock.advance(seconds=env.deps.settings.sync.reconcile_seconds + 1)

    async def converged() -> bool:
        await sync.run_once(env.deps)  # other links of this module may be due too: keep going
        async with env.deps.sessions() as session:
            stmt = select(Unavailability.provider_event_id).where(Unavailability.link_id == cal.link_id)
            return event_id in (await session.execute(stmt)).scalars().all()

    await until(converged, what="the reconciliation poll")
