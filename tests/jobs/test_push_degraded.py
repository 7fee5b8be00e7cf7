"""A calendar whose push cannot be opened tells the main API once (externalCalendar.pushDegraded)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs import push
from providers.sandbox import Sandbox
from tests.jobs.push_env import PushEnv, linked, push_env
from worker.config import Settings
from worker.crypto import new_key
from worker.db import notifications
from worker.db.tables import Resource, WebhookDelivery


@pytest.fixture(scope="module")
async def env(
    settings: Settings, engine: AsyncEngine, redis: Redis, http: aiohttp.ClientSession, sandbox: Sandbox
) -> AsyncIterator[PushEnv]:
    async with push_env(settings, engine, redis, http, sandbox) as e:
        yield e


async def test_first_push_failure_is_reported_once(env: PushEnv) -> None:
    cal = await linked(env, "google")
    async with env.deps.sessions() as session, session.begin():
        company = (await session.get(Resource, cal.resource_id)).company_id  # type: ignore[union-attr]
        await notifications.create_endpoint(
            session=session,
            company_id=company,
            url="http://127.0.0.1:9/hook",
            event_types=["externalCalendar.pushDegraded"],
            secret_enc=env.deps.cipher.encrypt(new_key()),
        )
    path = f"/calendars/{cal.calendar_id}/events/watch".replace("@", "(@|%40)")
    await env.sandbox.control.add_fault(provider="google", method="POST", path=path, status=403, count=50)
    try:
        assert (await push.ensure_push(env.deps, cal.link_id)).status == "failed"
        await cal.set(push_renew_at=None)  # due again at once: a second failure in a row
        assert (await push.ensure_push(env.deps, cal.link_id)).status == "failed"
    finally:
        await env.sandbox.control.clear_faults()
    async with env.deps.sessions() as session:
        rows = (await session.execute(select(WebhookDelivery.payload))).scalars().all()
    assert (await cal.row()).push_failures == 2
    reported = [p for p in rows if p["resourceId"] == cal.resource_id]
    assert [(p["type"], p["object"]["calendarId"]) for p in reported] == [
        ("externalCalendar.pushDegraded", cal.calendar_id)
    ]
