"""Key rotation: add a key, rotate, drop the old key, every connection still refreshes."""

from __future__ import annotations

from typing import Any

import aiohttp
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs.clients import client_for
from tests.conftest import make_deps, sandbox_settings
from tests.factories import make_connection, make_resource, new_id
from worker.config import Settings, with_overrides
from worker.crypto import TokenCipher, new_key
from worker.db.key_rotation import rotate_all
from worker.db.tables import ExternalCalendar


async def test_rotate_then_drop_old_key_and_refresh_still_works(
    settings: Settings, engine: AsyncEngine, redis: Redis, http: aiohttp.ClientSession, sandbox: Any
) -> None:
    old, new = new_key(), new_key()
    base = sandbox_settings(settings, sandbox, "http://127.0.0.1:9")
    old_deps = make_deps(with_overrides(base, crypto={"keys": [old]}), engine, redis, http)
    resource = await make_resource(old_deps.sessions)
    connections = []
    for provider, wire in (("google", "google"), ("outlook", "microsoft")):
        email = f"{new_id('rot')}@example.test"
        await sandbox.control.create_user(wire, email)
        tokens = await sandbox.control.issue_tokens(wire, email)
        connections.append(
            await make_connection(
                old_deps.sessions,
                resource=resource,
                provider=provider,
                status="active",
                account_email=email,
                refresh_token_enc=old_deps.cipher.encrypt(tokens["refresh_token"]),
            )
        )

    async with old_deps.sessions() as session, session.begin():
        rewritten = await rotate_all(session=session, rotate=TokenCipher([new, old]).rotate)
    assert rewritten >= 2

    new_deps = make_deps(with_overrides(base, crypto={"keys": [new]}), engine, redis, http)
    for conn in connections:
        async with new_deps.sessions() as session:
            row = (await session.execute(select(ExternalCalendar).where(ExternalCalendar.id == conn.id))).scalar_one()
        calendars = await client_for(new_deps, row).list_calendars()
        assert any(c.primary for c in calendars)
