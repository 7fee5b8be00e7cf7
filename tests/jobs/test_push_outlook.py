"""Graph subscriptions end to end: validation handshake, notifications, renewal, lifecycle events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

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
from worker.db.tables import Unavailability

MINUTES = 600  # our requested lifetime: renewals fall 5.5 to 6.5 hours in


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
    async with push_env(
        settings,
        engine,
        redis,
        http,
        sandbox,
        clock=clock,
        push={"subscription_minutes": MINUTES},
    ) as e:
        yield e


async def _subscriptions(cal: Linked) -> list[dict[str, Any]]:
    """The sandbox's subscriptions of the calendar's user."""
    body = await cal.env.sandbox.control.request("GET", "microsoft/subscriptions", params={"email": cal.email})
    return list(body["subscriptions"])


async def _requested(cal: Linked) -> bool:
    return (await cal.row()).sync_requested_at is not None


async def _opened(env: PushEnv) -> Linked:
    """A linked Outlook calendar, synced once, with a subscription and no pending request."""
    cal = await linked(env, "outlook")
    await sync.sync_link(env.deps, cal.link_id)
    assert (await push.ensure_push(env.deps, cal.link_id)).status == "opened"
    await cal.set(sync_requested_at=None)
    return cal


async def test_subscription_created_and_change_reaches_unavailability(env: PushEnv, clock: ManualClock) -> None:
    cal = await linked(env, "outlook")

    outcome = await push.ensure_push(env.deps, cal.link_id)

    assert outcome.status == "opened"
    row = await cal.row()
    subs = await _subscriptions(cal)
    assert [s["id"] for s in subs] == [row.push_id]
    assert subs[0]["notificationUrl"] == env.url + "/webhooks/outlook"
    assert subs[0]["lifecycleNotificationUrl"] == env.url + "/webhooks/outlook/lifecycle"
    assert row.push_kind == "graph_subscription" and row.push_error is None
    assert row.push_secret_hash == push.secret_hash(subs[0]["clientState"])
    now = env.deps.clock.now()
    assert row.push_expires_at and abs(row.push_expires_at - (now + timedelta(minutes=MINUTES))) < timedelta(seconds=5)
    assert row.push_renew_at and now + timedelta(hours=5.4) < row.push_renew_at < now + timedelta(hours=6.6)
    assert row.sync_requested_at is None  # never synced: the first sync is the sync engine's anyway
    await sync.sync_link(env.deps, cal.link_id)

    start = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    event_id = await cal.add_event(
        start.strftime("%Y-%m-%dT%H:%M:%S"), (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    )
    await until(lambda: _requested(cal), what="a sync request from the Graph notification")
    clock.advance(seconds=env.deps.settings.sync.sweep_seconds + 1)  # past the sync engine's least gap
    await sync.run_once(env.deps)

    async with env.deps.sessions() as session:
        stmt = select(Unavailability.provider_event_id, Unavailability.start_at).where(
            Unavailability.link_id == cal.link_id
        )
        assert [tuple(r) for r in (await session.execute(stmt)).all()] == [(event_id, start)]


async def test_renewal_patches_the_same_subscription(env: PushEnv, clock: ManualClock) -> None:
    cal = await _opened(env)
    before = await cal.row()
    assert before.push_renew_at is not None

    clock.advance(seconds=(before.push_renew_at - clock.now()).total_seconds() + 1)
    assert (await push.ensure_push(env.deps, cal.link_id)).status == "renewed"

    after = await cal.row()
    assert after.push_id == before.push_id and after.push_secret_hash == before.push_secret_hash
    assert after.push_expires_at and before.push_expires_at and after.push_expires_at > before.push_expires_at
    (sub,) = await _subscriptions(cal)
    assert datetime.fromisoformat(sub["expirationDateTime"]) == after.push_expires_at
    assert after.sync_requested_at is None  # a PATCH leaves no gap to catch up


async def test_renewal_of_a_vanished_subscription_creates_a_new_one(env: PushEnv, clock: ManualClock) -> None:
    cal = await _opened(env)
    before = await cal.row()
    await env.sandbox.control.add_fault(  # Graph no longer knows the subscription
        provider="microsoft", method="PATCH", path=f"/subscriptions/{before.push_id}$", status=404, count=1
    )
    assert before.push_renew_at is not None
    clock.advance(seconds=(before.push_renew_at - clock.now()).total_seconds() + 1)

    outcome = await push.ensure_push(env.deps, cal.link_id)

    assert outcome.status == "recreated"
    after = await cal.row()
    assert after.push_id != before.push_id and after.push_secret_hash != before.push_secret_hash
    assert [s["id"] for s in await _subscriptions(cal)] == [after.push_id]  # the old one deleted
    assert after.sync_requested_at is not None  # catch up on whatever the lost subscription missed


async def test_graph_refusing_the_subscription_is_recorded_and_retried(env: PushEnv, clock: ManualClock) -> None:
    cal = await linked(env, "outlook")
    await env.sandbox.control.settings(subscription_max_minutes=60)
    try:
        outcome = await push.ensure_push(env.deps, cal.link_id)
    finally:
        await env.sandbox.control.settings(subscription_max_minutes=4230)

    assert outcome.status == "failed"
    row = await cal.row()
    assert row.push_id is None and row.push_failures == 1
    assert row.push_error and "BadRequest" in row.push_error  # shown on the calendar status; short poll meanwhile
    assert row.push_renew_at is not None and row.push_renew_at >= clock.now()
    clock.advance(seconds=(row.push_renew_at - clock.now()).total_seconds() + 1)
    assert (await push.ensure_push(env.deps, cal.link_id)).status == "opened"
    row = await cal.row()
    assert row.push_error is None and row.push_failures == 0


async def _lifecycle(env: PushEnv, push_id: str | None, event: str) -> None:
    await env.sandbox.control.request(
        "POST", "microsoft/lifecycle", json={"subscription_id": push_id, "lifecycleEvent": event}
    )
    await env.sandbox.control.drain()


async def test_lifecycle_reauthorization_required_renews(env: PushEnv, clock: ManualClock) -> None:
    cal = await _opened(env)
    before = await cal.row()

    await _lifecycle(env, before.push_id, "reauthorizationRequired")

    row = await cal.row()
    assert row.push_renew_at == clock.now()  # due now; the PATCH happens in the job, not the handler
    assert (await push.ensure_push(env.deps, cal.link_id)).status == "renewed"
    assert (await cal.row()).push_id == before.push_id


async def test_lifecycle_subscription_removed_recreates_and_catches_up(env: PushEnv) -> None:
    cal = await _opened(env)
    before = await cal.row()

    await _lifecycle(env, before.push_id, "subscriptionRemoved")

    row = await cal.row()
    assert row.push_id is None and row.sync_requested_at is not None
    assert row.push_error and "removed" in row.push_error
    assert (await push.ensure_push(env.deps, cal.link_id)).status == "opened"
    after = await cal.row()
    assert after.push_id and after.push_id != before.push_id
    assert [s["id"] for s in await _subscriptions(cal)] == [after.push_id]


async def test_lifecycle_missed_requests_a_full_sync(env: PushEnv) -> None:
    cal = await _opened(env)

    await _lifecycle(env, (await cal.row()).push_id, "missed")

    row = await cal.row()
    assert row.sync_requested_at is not None and row.full_sync_requested


async def test_duplicated_notifications_add_nothing(env: PushEnv) -> None:
    cal = await _opened(env)
    await env.sandbox.control.delivery("microsoft", duplicate=3)
    for hour in range(3):
        start = (datetime.now(UTC) + timedelta(days=4, hours=hour)).replace(microsecond=0)
        await cal.add_event(
            start.strftime("%Y-%m-%dT%H:%M:%S"), (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S")
        )
    await env.sandbox.control.drain()

    push_id = (await cal.row()).push_id or "-"
    deliveries = [d for d in await env.sandbox.control.deliveries("microsoft") if push_id in d["body"]]
    assert len(deliveries) == 6 and all(d["status"] == 202 for d in deliveries)
    assert await _requested(cal)
    outcome = await sync.sync_link(env.deps, cal.link_id)
    assert outcome.added == 3
    assert not await _requested(cal)  # six deliveries, one request, one sync


async def test_deselect_deletes_the_subscription(env: PushEnv) -> None:
    cal = await _opened(env)

    await cal.set(read=False)
    counts = await push.run_once(env.deps)

    assert counts.get("stopped", 0) >= 1
    assert await _subscriptions(cal) == []
    assert (await cal.row()).push_id is None


async def test_stop_push_deletes_the_subscription_and_forgets_it(env: PushEnv) -> None:
    cal = await _opened(env)

    assert await push.stop_push(env.deps, await cal.row())

    assert await _subscriptions(cal) == []
    row = await cal.row()
    assert row.push_id is None and row.push_secret_hash is None and row.push_expires_at is None
    assert not await push.stop_push(env.deps, row)  # nothing held any more
