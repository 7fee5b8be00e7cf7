"""housekeeping.refresh_gauges: the DB-backed gauges follow the rows, and drop back to 0."""

from __future__ import annotations

import aiohttp
from redis.asyncio import Redis
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs import housekeeping
from jobs.registry import periodic_jobs
from tests.conftest import make_deps
from tests.status_data import seed_status
from worker.config import Settings
from worker.db.tables import ExternalCalendar, WriteOutbox
from worker.metrics import REGISTRY


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_refresh_gauges_reads_the_database(
    settings: Settings, engine: AsyncEngine, redis: Redis, http: aiohttp.ClientSession
) -> None:
    deps = make_deps(settings, engine, redis, http)
    seeded = await seed_status(deps.sessions, deps.clock.now())
    await housekeeping.refresh_gauges(deps)

    assert gauge("calsync_connections_reauth_required", provider="outlook") == 1
    assert gauge("calsync_connections_reauth_required", provider="google") == 0
    assert gauge("calsync_connections", provider="google", status="active") == 1
    assert gauge("calsync_outbox_depth", state="pending") == 1
    assert gauge("calsync_outbox_depth", state="waiting_calendar") == 1
    assert 590 <= (gauge("calsync_outbox_oldest_age_seconds") or 0) < 700
    assert gauge("calsync_push_near_expiry", kind="google_channel") == 1
    assert gauge("calsync_push_near_expiry", kind="graph_subscription") == 0
    assert gauge("calsync_webhook_deliveries_backlog", status="failed") == 1
    assert gauge("calsync_quarantined_events") == 1

    async with deps.sessions() as session, session.begin():
        await session.execute(update(ExternalCalendar).values(status="active"))
        await session.execute(delete(WriteOutbox))
    await housekeeping.refresh_gauges(deps)
    assert gauge("calsync_connections_reauth_required", provider="outlook") == 0
    assert gauge("calsync_outbox_depth", state="pending") == 0
    assert gauge("calsync_outbox_oldest_age_seconds") == 0
    assert seeded.resource_id


async def test_refresh_gauges_is_scheduled(
    settings: Settings, engine: AsyncEngine, redis: Redis, http: aiohttp.ClientSession
) -> None:
    jobs = {job.id: job.func for job in periodic_jobs(make_deps(settings, engine, redis, http))}
    assert jobs["gauges"] is housekeeping.refresh_gauges
