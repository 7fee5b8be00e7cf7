"""Test support for push: the API served on a real port whose URL is the daemon's public_url.

`push_env(...)` serves build_app on a free port, then builds the job Deps with
`server.public_url` set to that URL and the provider settings pointing at the sandbox, so
the sandbox's channel messages and Graph notifications really reach our webhooks.
`linked(env, provider)` makes a sandbox user, a resource, an active connection (encrypted
refresh token) and a read link to the user's primary calendar, with a fresh e-mail.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from providers.sandbox import Sandbox
from tests.conftest import make_deps, sandbox_settings, serve_api
from tests.factories import SANDBOX_NAME, make_sandbox_account
from worker.clock import Clock, SystemClock
from worker.config import Settings, with_overrides
from worker.db.tables import CalendarLink
from worker.deps import Deps


@dataclass
class PushEnv:
    deps: Deps  # job deps: public_url is the served API
    url: str
    sandbox: Sandbox
    http: aiohttp.ClientSession


@contextlib.asynccontextmanager
async def push_env(
    settings: Settings,
    engine: AsyncEngine,
    redis: Redis,
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
    *,
    clock: Clock | None = None,
    **overrides: Any,
) -> AsyncIterator[PushEnv]:
    """Serve the API, then point job Deps (same DB, Redis, clock) at it and at the sandbox."""
    settings = with_overrides(settings, **overrides)
    served = make_deps(settings, engine, redis, http, clock=clock or SystemClock())
    async with serve_api(served) as url:
        job_settings = sandbox_settings(settings, sandbox, url)
        deps = dataclasses.replace(served, settings=job_settings)
        yield PushEnv(deps=deps, url=url, sandbox=sandbox, http=http)
        await sandbox.control.drain()
        await deps.tasks.drain(2.0)


@dataclass
class Linked:
    """A connected provider calendar with a read link."""

    env: PushEnv
    provider: str  # ours
    email: str
    calendar_id: str
    resource_id: str
    connection_id: int
    link_id: int

    @property
    def sb(self) -> str:
        return SANDBOX_NAME[self.provider]

    async def row(self) -> CalendarLink:
        async with self.env.deps.sessions() as session:
            stmt = select(CalendarLink).where(CalendarLink.id == self.link_id)
            return (await session.execute(stmt)).scalar_one()

    async def set(self, **values: Any) -> None:
        async with self.env.deps.sessions() as session, session.begin():
            await session.execute(update(CalendarLink).where(CalendarLink.id == self.link_id).values(**values))

    async def add_event(self, start_iso: str, end_iso: str) -> str:
        """Create an event as the user (the provider then notifies its subscribers)."""
        if self.provider == "google":
            body: dict[str, Any] = {"summary": "busy", "start": {"dateTime": start_iso}, "end": {"dateTime": end_iso}}
        else:
            body = {
                "subject": "busy",
                "start": {"dateTime": start_iso.removesuffix("Z"), "timeZone": "UTC"},
                "end": {"dateTime": end_iso.removesuffix("Z"), "timeZone": "UTC"},
            }
        event = await self.env.sandbox.control.create_event(self.sb, self.email, body, self.calendar_id)
        return str(event["id"])


async def linked(env: PushEnv, provider: str) -> Linked:
    acct = await make_sandbox_account(env.deps, env.sandbox, provider, tag="push")
    return Linked(env, provider, acct.email, acct.link.calendar_id, acct.resource.id, acct.connection.id, acct.link.id)
