"""Fixtures for sync and bulk jobs: Deps pointed at the sandbox, and connected calendars.

`connect("google" | "outlook")` makes a sandbox user with tokens, a resource, an active
connection (encrypted refresh token, as OAuth would leave it) and a read link to the
user's primary calendar. Each call uses a fresh e-mail, so tests need no sandbox reset.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from providers.sandbox import Sandbox
from tests.conftest import make_deps, sandbox_settings
from tests.factories import SANDBOX_NAME, make_sandbox_account
from worker.config import Settings, with_overrides
from worker.db.tables import CalendarLink, Unavailability
from worker.deps import Deps


def day_start(offset_days: int = 0) -> datetime:
    """Midnight UTC `offset_days` from today (events must sit inside the live sync window)."""
    today = datetime.now(UTC).date() + timedelta(days=offset_days)
    return datetime(today.year, today.month, today.day, tzinfo=UTC)


@dataclass
class Calendar:
    """One connected provider calendar and the handles a test needs to drive it."""

    deps: Deps
    sandbox: Sandbox
    provider: str  # ours: "google" | "outlook"
    email: str
    calendar_id: str
    resource_id: str
    connection_id: int
    link_id: int

    @property
    def sb(self) -> str:
        return SANDBOX_NAME[self.provider]

    def timed(self, start: datetime, minutes: int = 60, **extra: Any) -> dict[str, Any]:
        """A provider-native timed event body."""
        end = start + timedelta(minutes=minutes)
        if self.provider == "google":
            body = {"summary": "busy", "start": {"dateTime": start.isoformat()}, "end": {"dateTime": end.isoformat()}}
        else:
            body = {
                "subject": "busy",
                "start": {"dateTime": _naive(start), "timeZone": "UTC"},
                "end": {"dateTime": _naive(end), "timeZone": "UTC"},
            }
        return body | extra

    def all_day(self, first: date, days: int = 1) -> dict[str, Any]:
        """A provider-native all-day event body."""
        last = first + timedelta(days=days)
        if self.provider == "google":
            return {"summary": "off", "start": {"date": first.isoformat()}, "end": {"date": last.isoformat()}}
        return {
            "subject": "off",
            "isAllDay": True,
            "start": {"dateTime": f"{first.isoformat()}T00:00:00", "timeZone": "UTC"},
            "end": {"dateTime": f"{last.isoformat()}T00:00:00", "timeZone": "UTC"},
        }

    def free(self) -> dict[str, Any]:
        """The patch that marks an event free."""
        return {"transparency": "transparent"} if self.provider == "google" else {"showAs": "free"}

    def declined(self) -> dict[str, Any]:
        """The patch by which the calendar owner declines an event."""
        if self.provider == "google":
            return {"attendees": [{"email": self.email, "responseStatus": "declined"}]}
        return {"responseStatus": {"response": "declined", "time": "2026-01-01T00:00:00Z"}}

    def moved(self, start: datetime, minutes: int = 60) -> dict[str, Any]:
        body = self.timed(start, minutes)
        return {"start": body["start"], "end": body["end"]}

    async def create(self, body: dict[str, Any]) -> str:
        event = await self.sandbox.control.create_event(self.sb, self.email, body, self.calendar_id)
        return str(event["id"])

    async def patch(self, event_id: str, patch: dict[str, Any]) -> None:
        await self.sandbox.control.patch_event(self.sb, self.email, event_id, patch, self.calendar_id)

    async def delete(self, event_id: str) -> None:
        await self.sandbox.control.delete_event(self.sb, self.email, event_id, self.calendar_id)

    async def rows(self) -> list[tuple[str, datetime, datetime]]:
        """(event id, start, end) of the link's unavailability, sorted by start."""
        async with self.deps.sessions() as session:
            stmt = select(Unavailability.provider_event_id, Unavailability.start_at, Unavailability.end_at).where(
                Unavailability.link_id == self.link_id
            )
            return sorted((tuple(r) for r in (await session.execute(stmt)).all()), key=lambda r: (r[1], r[0]))

    async def spans(self) -> list[tuple[datetime, datetime]]:
        return [(r[1], r[2]) for r in await self.rows()]

    async def link(self) -> CalendarLink:
        async with self.deps.sessions() as session:
            stmt = select(CalendarLink).where(CalendarLink.id == self.link_id)
            return (await session.execute(stmt)).scalar_one()

    async def api_requests(self, since: int = 0) -> list[dict[str, Any]]:
        """The sandbox's log of API requests on this calendar (token calls excluded)."""
        log = await self.sandbox.control.requests(self.sb, since)
        names = (self.calendar_id, quote(self.calendar_id, safe=""))
        return [r for r in log if any(n in r["path"] for n in names)]


def _naive(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat()


async def last_seq(sandbox: Sandbox) -> int:
    return max((r["seq"] for r in await sandbox.control.requests()), default=0)


Connect = Callable[..., Awaitable[Calendar]]


@pytest.fixture(scope="module")
def sync_settings(settings: Settings, sandbox: Sandbox) -> Settings:
    """Test settings pointed at the sandbox, with fast retries and short leases."""
    base = sandbox_settings(settings, sandbox, "http://127.0.0.1:9")
    return with_overrides(base, http={"retry_attempts": 6}, sync={"lease_seconds": 30})


@pytest.fixture(scope="module")
async def deps(
    sync_settings: Settings, engine: AsyncEngine, redis: Redis, http: aiohttp.ClientSession
) -> AsyncIterator[Deps]:
    d = make_deps(sync_settings, engine, redis, http, worker_id="worker-a")
    yield d
    await d.tasks.drain(2.0)


async def connect_calendar(deps: Deps, sandbox: Sandbox, provider: str, *, timezone: str = "UTC") -> Calendar:
    """A sandbox user connected to a new resource through an active connection and read link."""
    acct = await make_sandbox_account(deps, sandbox, provider, tag="sync", timezone=timezone)
    return Calendar(
        deps, sandbox, provider, acct.email, acct.link.calendar_id, acct.resource.id, acct.connection.id, acct.link.id
    )


@pytest.fixture
def connect(deps: Deps, sandbox: Sandbox) -> Connect:
    async def make(provider: str, **kw: Any) -> Calendar:
        return await connect_calendar(deps, sandbox, provider, **kw)

    return make


@pytest.fixture(params=["google", "outlook"])
def provider(request: pytest.FixtureRequest) -> str:
    """Run a test once per provider: both must end in the same exact state."""
    return str(request.param)
