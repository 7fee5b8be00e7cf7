"""Fixtures for the write job: a sandbox account with a write calendar, the API, and a drain loop.

Import the fixtures into a test module (`from tests.jobs.conftest_write import writes`).
Every account uses a fresh e-mail, so tests need no sandbox reset.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs import write
from providers.base import ProviderEvent
from providers.google import mapping as google_mapping
from providers.outlook import mapping as outlook_mapping
from providers.sandbox import Sandbox
from tests.conftest import make_deps, sandbox_settings, serve_api
from tests.factories import SANDBOX_NAME, make_sandbox_account
from worker.api.auth import mint_token
from worker.config import Settings, with_overrides
from worker.db.tables import CalendarLink, WriteOutbox
from worker.deps import Deps

READ_ONLY_SCOPE = {
    "google": "https://www.googleapis.com/auth/calendar.readonly",
    "outlook": "offline_access User.Read Calendars.Read",
}
CREATE_PATH = {"google": r"/calendars/[^/]+/events$", "outlook": r"/calendars/[^/]+/events$"}


def slot(day: int, hour: int = 9) -> datetime:
    """A whole hour `day` days from today (inside any sync window)."""
    today = datetime.now(UTC).date() + timedelta(days=day)
    return datetime(today.year, today.month, today.day, hour, tzinfo=UTC)


@dataclass
class Account:
    """A resource connected to one sandbox user whose calendar is its write calendar."""

    provider: str
    email: str
    company_id: str
    resource_id: str
    connection_id: int
    calendar_id: str
    link_id: int

    @property
    def sb(self) -> str:
        return SANDBOX_NAME[self.provider]


@dataclass
class Writes:
    """The API on a real port plus helpers to drive appointments and read the sandbox back."""

    deps: Deps
    sandbox: Sandbox
    url: str
    http: aiohttp.ClientSession

    async def account(
        self, provider: str, *, scope: str | None = None, read: bool = False, write: bool = True
    ) -> Account:
        """A new sandbox user connected to a new resource; its primary calendar is the write calendar."""
        acct = await make_sandbox_account(
            self.deps, self.sandbox, provider, tag="write", scope=scope, read=read, write=write
        )
        r, link = acct.resource, acct.link
        return Account(provider, acct.email, r.company_id, r.id, acct.connection.id, link.calendar_id, link.id)

    async def new_write_calendar(self, account: Account, name: str) -> Account:
        """A second calendar of the same user becomes the resource's write calendar (as select does)."""
        calendar = await self.sandbox.control.add_calendar(account.sb, account.email, name)
        async with self.deps.sessions() as session, session.begin():
            await session.execute(
                update(CalendarLink).where(CalendarLink.resource_id == account.resource_id).values(write=False)
            )
            link = CalendarLink(
                connection_id=account.connection_id,
                resource_id=account.resource_id,
                calendar_id=calendar["id"],
                write=True,
            )
            session.add(link)
            await session.flush()
            link_id = link.id
        return Account(**{**account.__dict__, "calendar_id": calendar["id"], "link_id": link_id})

    def _headers(self, account: Account) -> dict[str, str]:
        token = mint_token(self.deps.settings.auth, company_id=account.company_id, now=int(time.time()))
        return {"Authorization": f"Bearer {token}"}

    def _path(self, account: Account, appointment_id: str) -> str:
        return f"{self.url}/v3/resource/{account.resource_id}/appointments/{appointment_id}"

    async def put(
        self, account: Account, appointment_id: str, version: int, start: datetime, *, minutes: int = 60, **kw: Any
    ) -> dict[str, Any]:
        """PUT the appointment (confirmed unless `status` says otherwise); the API's answer."""
        body = {
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=minutes)).isoformat(),
            "status": "confirmed",
            "title": f"Appointment {appointment_id}",
            "version": version,
        } | kw
        async with self.http.put(self._path(account, appointment_id), json=body, headers=self._headers(account)) as r:
            assert r.status in (200, 202), await r.text()
            return dict(await r.json())

    async def delete(self, account: Account, appointment_id: str) -> dict[str, Any]:
        async with self.http.delete(self._path(account, appointment_id), headers=self._headers(account)) as r:
            assert r.status in (200, 202), await r.text()
            return dict(await r.json())

    async def get(self, account: Account, appointment_id: str) -> dict[str, Any]:
        async with self.http.get(self._path(account, appointment_id), headers=self._headers(account)) as r:
            assert r.status == 200, await r.text()
            return dict(await r.json())

    async def drain(self, *, seconds: float = 20.0) -> dict[str, int]:
        """Run the write job until nothing is pending (waiting and failed entries stay); summed counts."""
        totals: dict[str, int] = {}
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            counts = await write.run_once(self.deps)
            for key, n in counts.items():
                totals[key] = totals.get(key, 0) + n
            if counts["claimed"] == 0:
                if not await self.pending():
                    return totals
                await asyncio.sleep(0.02)  # an entry in backoff: poll until it is due
        raise AssertionError(f"outbox not drained in {seconds}s: {totals}")

    async def pending(self) -> int:
        async with self.deps.sessions() as session:
            stmt = select(WriteOutbox.id).where(WriteOutbox.state == "pending")
            return len((await session.execute(stmt)).all())

    async def events(self, account: Account, calendar_id: str | None = None) -> list[ProviderEvent]:
        """The live (not cancelled) events on the account's calendar, as the mapping reads them."""
        raw = await self.sandbox.control.list_events(account.sb, account.email, calendar_id or account.calendar_id)
        parse = google_mapping.parse_event if account.provider == "google" else outlook_mapping.parse_event
        parsed = [parse(r) for r in raw]
        events = [e for e in parsed if isinstance(e, ProviderEvent)]
        assert len(events) == len(parsed), "the sandbox returned an unreadable event"
        return [e for e in events if e.status != "cancelled"]

    async def tagged(
        self, account: Account, appointment_id: str, calendar_id: str | None = None
    ) -> list[ProviderEvent]:
        """The live events that carry the appointment's tag."""
        return [e for e in await self.events(account, calendar_id) if e.appointment_tag == appointment_id]


@pytest.fixture(scope="module")
def write_settings(settings: Settings, sandbox: Sandbox) -> Settings:
    """Sandbox providers, fast request retries and fast per-entry backoff."""
    base = sandbox_settings(settings, sandbox, "http://127.0.0.1:9")
    return with_overrides(
        base,
        http={"retry_attempts": 3, "retry_base_seconds": 0.01, "retry_cap_seconds": 0.05, "retry_deadline_seconds": 5},
        write={"backoff_base_seconds": 0.05, "backoff_cap_seconds": 0.2, "lease_seconds": 30},
    )


@pytest.fixture(scope="module")
async def writes(
    write_settings: Settings, engine: AsyncEngine, redis: Redis, http: aiohttp.ClientSession, sandbox: Sandbox
) -> AsyncIterator[Writes]:
    deps = make_deps(write_settings, engine, redis, http, worker_id="writer-a")
    async with serve_api(deps) as url:
        yield Writes(deps, sandbox, url, http)
    await deps.tasks.drain(2.0)


@pytest.fixture(autouse=True)
async def no_faults_left(sandbox: Sandbox) -> AsyncIterator[None]:
    """Clear the sandbox's fault rules after each test (the sandbox is shared by the session)."""
    yield
    await sandbox.control.clear_faults()
