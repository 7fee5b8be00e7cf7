"""Syncs recover exactly from dead cursors, throttling, outages and dropped connections;
a dead grant stops the connection; other failures back the link off."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from jobs import sync
from providers.sandbox import Sandbox
from worker.db import links, notifications
from worker.db.tables import ExternalCalendar, Resource, WebhookDelivery

from .conftest import Calendar, Connect, day_start, last_seq

H = timedelta(hours=1)
LISTING = r"(/events|/calendarView/delta)$"


@pytest.fixture(autouse=True)
async def _no_faults(sandbox: Sandbox) -> AsyncIterator[None]:
    yield
    await sandbox.control.clear_faults()


async def _three_events(cal: Calendar) -> list[str]:
    t = day_start(2) + 9 * H
    return [await cal.create(cal.timed(t + i * 2 * H)) for i in range(3)]


async def test_dead_cursor_means_full_resync_with_deletes(connect: Connect, provider: str, sandbox: Sandbox) -> None:
    cal = await connect(provider)
    ids = await _three_events(cal)
    await sync.sync_link(cal.deps, cal.link_id)
    old_cursor = (await cal.link()).sync_cursor
    await cal.delete(ids[0])
    await sandbox.control.invalidate_cursors(cal.sb, cal.email)

    outcome = await sync.sync_link(cal.deps, cal.link_id)

    assert outcome.status == "synced" and outcome.full and outcome.removed == 1
    assert [r[0] for r in await cal.rows()] == ids[1:]
    assert (await cal.link()).sync_cursor not in (None, old_cursor)


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429, "retry_after": 1, "count": 1},
        {"status": 503, "count": 3},
        {"reset": True, "count": 2},
    ],
    ids=["429-retry-after", "503-burst", "connection-reset"],
)
async def test_transient_faults_end_in_the_exact_state(
    connect: Connect, provider: str, sandbox: Sandbox, fault: dict[str, object]
) -> None:
    cal = await connect(provider)
    ids = await _three_events(cal)
    await sync.sync_link(cal.deps, cal.link_id)
    await cal.delete(ids[1])
    moved = day_start(3) + 15 * H
    await cal.patch(ids[2], cal.moved(moved))
    await sandbox.control.add_fault(provider=cal.sb, path=LISTING, **fault)

    outcome = await sync.sync_link(cal.deps, cal.link_id)

    assert outcome.status == "synced", outcome.error
    assert await cal.rows() == [(ids[0], day_start(2) + 9 * H, day_start(2) + 10 * H), (ids[2], moved, moved + H)]


async def test_retry_after_is_honoured(connect: Connect, provider: str, sandbox: Sandbox) -> None:
    cal = await connect(provider)
    await sandbox.control.add_fault(provider=cal.sb, path=LISTING, status=429, retry_after=1, count=1)
    since = await last_seq(sandbox)

    await sync.sync_link(cal.deps, cal.link_id)

    tries = await cal.api_requests(since)
    assert [r["status"] for r in tries][:2] == [429, 200]
    gap = datetime.fromisoformat(tries[1]["timestamp"]) - datetime.fromisoformat(tries[0]["timestamp"])
    assert gap >= timedelta(seconds=0.9)


async def test_invalid_grant_marks_reauth_and_stops_polling(connect: Connect, provider: str, sandbox: Sandbox) -> None:
    cal = await connect(provider)
    await _three_events(cal)
    await sync.sync_link(cal.deps, cal.link_id)
    await sandbox.control.revoke_grant(cal.sb, cal.email)
    await sandbox.control.expire_tokens(cal.sb)

    outcome = await sync.sync_link(cal.deps, cal.link_id)

    assert outcome.status == "reauth_required"
    async with cal.deps.sessions() as session:
        status = (
            await session.execute(select(ExternalCalendar.status).where(ExternalCalendar.id == cal.connection_id))
        ).scalar_one()
    assert status == "reauth_required"
    assert len(await cal.rows()) == 3  # the last known busy time stays
    async with cal.deps.sessions() as session, session.begin():
        await links.request_sync(session=session, now=cal.deps.clock.now(), link_ids=[cal.link_id], interactive=True)
    since = await last_seq(sandbox)
    await sync.run_once(cal.deps)
    assert await cal.api_requests(since) == []
    assert (await cal.link()).lease_owner is None


async def test_persistent_failure_backs_off_then_recovers(connect: Connect, provider: str, sandbox: Sandbox) -> None:
    cal = await connect(provider)
    await _three_events(cal)
    await sandbox.control.add_fault(provider=cal.sb, path=LISTING, status=500, count=1000)
    async with cal.deps.sessions() as session, session.begin():
        await links.request_sync(session=session, now=cal.deps.clock.now(), link_ids=[cal.link_id])

    counts = await sync.run_once(cal.deps)

    assert counts.get("failed") == 1
    link = await cal.link()
    assert link.consecutive_failures == 1 and link.last_error and "Unavailable" in link.last_error
    assert link.next_attempt_at is not None and link.sync_requested_at is not None  # the request is kept
    assert await cal.rows() == []
    await sandbox.control.clear_faults()
    if cal.deps.clock.now() < link.next_attempt_at - timedelta(milliseconds=50):
        assert (await sync.run_once(cal.deps))["claimed"] == 0  # not before its next attempt
    # the backoff is at most backoff_cap_seconds (1 s in tests): wait it out, then it is due
    await asyncio.sleep(max(0.0, (link.next_attempt_at - cal.deps.clock.now()).total_seconds()))
    counts = await sync.run_once(cal.deps)
    assert counts.get("synced") == 1
    link = await cal.link()
    assert link.consecutive_failures == 0 and link.last_error is None and len(await cal.rows()) == 3


async def test_the_main_api_hears_failing_and_recovered_once(connect: Connect, sandbox: Sandbox) -> None:
    cal = await connect("google")
    async with cal.deps.sessions() as session, session.begin():
        resource = await session.get(Resource, cal.resource_id)
        assert resource is not None
        await notifications.create_endpoint(
            session=session,
            company_id=resource.company_id,
            url="http://127.0.0.1:9/hook",
            event_types=["externalCalendar.syncFailing", "externalCalendar.recovered"],
            secret_enc=cal.deps.cipher.encrypt("whsec_test"),
        )
    await sandbox.control.add_fault(provider=cal.sb, path=LISTING, status=500, count=1000)
    for _ in range(sync.FAILING_AFTER + 1):
        assert (await sync.sync_link(cal.deps, cal.link_id)).status == "failed"
    await sandbox.control.clear_faults()
    assert (await sync.sync_link(cal.deps, cal.link_id)).status == "synced"
    assert (await sync.sync_link(cal.deps, cal.link_id)).status == "synced"

    async with cal.deps.sessions() as session:
        stmt = select(WebhookDelivery.event_type, WebhookDelivery.payload).order_by(WebhookDelivery.created_at)
        sent = [(t, p["object"]) for t, p in (await session.execute(stmt)).all() if p["resourceId"] == cal.resource_id]
    assert [t for t, _ in sent] == ["externalCalendar.syncFailing", "externalCalendar.recovered"]
    assert sent[0][1]["consecutiveFailures"] == sync.FAILING_AFTER and sent[0][1]["calendarId"] == cal.calendar_id
