"""What a reliability run works on: connected accounts, a stream of outside changes, and the truth.

Accounts are seeded straight into the database (an active connection whose refresh token
the sandbox issued, one read+write link on the primary calendar), so a run needs nothing
but the sync and write engines. The truth of a calendar is what the provider lists over
the sync window, mapped by the same busy rules; the run passes when the stored
unavailability equals it exactly.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.ingest import sync_window
from providers.base import Window
from providers.google.client import GoogleCalendarClient
from providers.google.mapping import parse_event as parse_google
from providers.http import ProviderHttp, RetryPolicy, raise_for_google_status, raise_for_graph_status
from providers.outlook.client import GraphCalendarClient
from providers.outlook.mapping import parse_event as parse_graph
from providers.rules import DEFAULT_POLICY, to_busy
from tests.factories import make_connection, make_link, make_resource, new_id
from worker.api.auth import mint_token
from worker.config import AuthSettings, SyncSettings
from worker.crypto import TokenCipher
from worker.db.tables import CalendarLink, Unavailability

SANDBOX_NAME = {"google": "google", "outlook": "microsoft"}
Row = tuple[str, datetime, datetime]


@dataclass
class Account:
    """One resource connected to one sandbox mailbox, its link, and the events we made there."""

    provider: str  # ours: google | outlook
    email: str
    calendar_id: str
    resource_id: str
    company_id: str
    connection_id: int
    link_id: int
    timezone: str
    events: list[str] = field(default_factory=list)

    @property
    def sandbox_provider(self) -> str:
        return SANDBOX_NAME[self.provider]


async def seed_account(
    sessions: async_sessionmaker[AsyncSession],
    sandbox: Any,
    cipher: TokenCipher,
    *,
    provider: str,
    timezone: str = "UTC",
    company_id: str | None = None,
) -> Account:
    """A sandbox user and an active connection to it with one read+write link."""
    email = f"{new_id(provider)}@example.com"
    user = await sandbox.control.create_user(SANDBOX_NAME[provider], email)
    calendar_id = next(c["id"] for c in user["calendars"] if c["primary"])
    tokens = await sandbox.control.issue_tokens(SANDBOX_NAME[provider], email)
    resource = await make_resource(sessions, company_id=company_id, timezone=timezone)
    connection = await make_connection(
        sessions,
        resource=resource,
        provider=provider,
        status="active",
        account_email=email,
        refresh_token_enc=cipher.encrypt(tokens["refresh_token"]),
        connected_at=datetime.now(UTC),
    )
    link = await make_link(
        sessions, connection=connection, calendar_id=calendar_id, name="primary", read=True, write=True, primary=True
    )
    return Account(provider, email, calendar_id, resource.id, resource.company_id, connection.id, link.id, timezone)


class ChangeStream:
    """Seeded random edits made "by the user" at the sandbox: create, move, free/busy, delete."""

    def __init__(self, sandbox: Any, accounts: list[Account], seed: int) -> None:
        self.sandbox = sandbox
        self.accounts = accounts
        self.rng = random.Random(seed)
        self.made = 0
        self.base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)

    async def step(self) -> None:
        """One change on one account."""
        account = self.rng.choice(self.accounts)
        roll = self.rng.random()
        if not account.events or roll < 0.5:
            await self._create(account)
        elif roll < 0.85:
            await self._patch(account)
        else:
            await self._delete(account)
        self.made += 1

    async def _create(self, account: Account) -> None:
        body = self._body(account.provider)
        event = await self.sandbox.control.create_event(account.sandbox_provider, account.email, body)
        account.events.append(event["id"])

    async def _patch(self, account: Account) -> None:
        event_id = self.rng.choice(account.events)
        await self.sandbox.control.patch_event(
            account.sandbox_provider, account.email, event_id, self._body(account.provider)
        )

    async def _delete(self, account: Account) -> None:
        event_id = account.events.pop(self.rng.randrange(len(account.events)))
        await self.sandbox.control.delete_event(account.sandbox_provider, account.email, event_id)

    def _body(self, provider: str) -> dict[str, Any]:
        start = self.base + timedelta(hours=self.rng.randrange(0, 24 * 40), minutes=15 * self.rng.randrange(4))
        end = start + timedelta(minutes=15 * self.rng.randint(1, 12))
        all_day = self.rng.random() < 0.1
        free = self.rng.random() < 0.2
        if provider == "google":
            return _google_body(start, end, all_day=all_day, free=free, n=self.made)
        return _graph_body(start, end, all_day=all_day, show_as="free" if free else self._graph_show_as(), n=self.made)

    def _graph_show_as(self) -> str:
        return self.rng.choice(["busy", "busy", "tentative", "oof"])


def _google_body(start: datetime, end: datetime, *, all_day: bool, free: bool, n: int) -> dict[str, Any]:
    body: dict[str, Any] = {"summary": f"outside {n}", "transparency": "transparent" if free else "opaque"}
    if all_day:
        day = start.date()
        body |= {"start": {"date": day.isoformat()}, "end": {"date": (day + timedelta(days=1)).isoformat()}}
    else:
        body |= {"start": {"dateTime": _z(start)}, "end": {"dateTime": _z(end)}}
    return body


def _graph_body(start: datetime, end: datetime, *, all_day: bool, show_as: str, n: int) -> dict[str, Any]:
    body: dict[str, Any] = {"subject": f"outside {n}", "showAs": show_as, "isAllDay": all_day}
    if all_day:
        day: date = start.date()
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
    fmt = "%Y-%m-%dT%H:%M:%S"
    return body | {
        "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime(fmt), "timeZone": "UTC"},
    }


def _z(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _StaticToken:
    """A bearer token the sandbox issued directly (the truth reader never refreshes)."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def bearer(self) -> str:
        return self.token

    async def refresh_after_unauthorized(self, rejected: str) -> None:
        return None


async def truth(sandbox: Any, http: aiohttp.ClientSession, account: Account, window: Window) -> set[Row]:
    """What the provider lists for the account's calendar over `window`, mapped by the busy rules."""
    tokens = await sandbox.control.issue_tokens(account.sandbox_provider, account.email)
    auth = _StaticToken(tokens["access_token"])
    policy = RetryPolicy(attempts=3, base=0.05, cap=0.2, deadline=10)
    client: GoogleCalendarClient | GraphCalendarClient
    if account.provider == "google":
        api = ProviderHttp(http, api_base=sandbox.google_api, raise_for_status=raise_for_google_status, policy=policy)
        client = GoogleCalendarClient(api, auth)
    else:
        api = ProviderHttp(http, api_base=sandbox.graph_api, raise_for_status=raise_for_graph_status, policy=policy)
        client = GraphCalendarClient(api, auth)
    rows: set[Row] = set()
    tz = ZoneInfo(account.timezone)
    async for page in client.list_changes(account.calendar_id, None, window):
        assert not page.quarantined, f"the workload made unreadable events: {page.quarantined}"
        for event in page.events:
            busy = to_busy(event, resource_tz=tz, window=window, policy=DEFAULT_POLICY)
            if busy is not None:
                rows.add((busy.event_id, busy.start, busy.end))
    return rows


def today_window() -> Window:
    """The sync window the daemons use (default settings) as of now."""
    return sync_window(datetime.now(UTC), SyncSettings())


async def stored(sessions: async_sessionmaker[AsyncSession], link_id: int) -> set[Row]:
    """The unavailability rows of one link."""
    u = Unavailability
    stmt = select(u.provider_event_id, u.start_at, u.end_at).where(u.link_id == link_id)
    async with sessions() as session:
        return {(r[0], r[1], r[2]) for r in (await session.execute(stmt)).all()}


async def make_renewals_due(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Every open channel or subscription is due for renewal now (to reach push.mid_renewal)."""
    stmt = update(CalendarLink).where(CalendarLink.push_id.is_not(None)).values(push_renew_at=datetime.now(UTC))
    async with sessions() as session, session.begin():
        await session.execute(stmt)


@dataclass
class Booking:
    """An appointment as the main API last sent it."""

    account: Account
    id: str
    version: int
    start: datetime
    status: str = "confirmed"


class AppointmentStream:
    """Seeded appointment traffic through a daemon's API: book, move, cancel (each a new version)."""

    def __init__(self, urls: list[str], accounts: list[Account], jwt_secret: str, seed: int) -> None:
        self.urls = urls
        self.accounts = accounts
        self.auth = AuthSettings(jwt_secret=jwt_secret)
        self.rng = random.Random(seed)
        self.bookings: dict[str, Booking] = {}
        self.sent = 0
        self.base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)

    async def step(self, http: aiohttp.ClientSession) -> None:
        """One booking, move or cancellation (retried until some daemon takes it)."""
        live = [b for b in self.bookings.values() if b.status == "confirmed"]
        roll = self.rng.random()
        if not live or roll < 0.5:
            account = self.rng.choice(self.accounts)
            booking = Booking(account, new_id("appt"), 0, self._slot())
            self.bookings[booking.id] = booking
        else:
            booking = self.rng.choice(live)
            booking.start = self._slot()
            if roll > 0.85:
                booking.status = "cancelled"
        booking.version += 1
        await self._send(http, booking)
        self.sent += 1

    def _slot(self) -> datetime:
        return self.base + timedelta(hours=self.rng.randrange(0, 24 * 30))

    async def _send(self, http: aiohttp.ClientSession, b: Booking) -> None:
        token = mint_token(self.auth, company_id=b.account.company_id, ttl_seconds=3600, now=int(time.time()))
        body = {
            "start": b.start.isoformat(),
            "end": (b.start + timedelta(minutes=30)).isoformat(),
            "status": b.status,
            "title": f"booking {b.id}",
            "version": b.version,
        }
        path = f"/v3/resource/{b.account.resource_id}/appointments/{b.id}"
        deadline = time.monotonic() + 60
        while True:
            url = self.urls[self.rng.randrange(len(self.urls))]
            try:
                async with http.put(
                    url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=_SHORT
                ) as resp:
                    if resp.status in (200, 202):
                        return
                    if resp.status < 500:
                        raise AssertionError(f"PUT {path} answered {resp.status}: {await resp.text()}")
            except (aiohttp.ClientError, TimeoutError):
                pass  # that daemon is dead or restarting: the main API would retry too
            if time.monotonic() > deadline:
                raise AssertionError(f"no daemon accepted PUT {path}")
            await asyncio.sleep(0.2)


_SHORT = aiohttp.ClientTimeout(total=5)


async def booking_mismatches(sandbox: Any, stream: AppointmentStream) -> list[str]:
    """Bookings whose provider events are not exactly right: one at the right time if confirmed, none if not."""
    counts: dict[str, dict[str, list[Any]]] = {}
    for account in stream.accounts:
        counts[str(account.link_id)] = await _tagged(sandbox, account)
    wrong = []
    for b in stream.bookings.values():
        events = counts[str(b.account.link_id)].get(b.id, [])
        if b.status == "cancelled" and events:
            wrong.append(f"{b.id}: cancelled but {len(events)} events")
        elif b.status == "confirmed" and len(events) != 1:
            wrong.append(f"{b.id}: confirmed but {len(events)} events")
        elif b.status == "confirmed" and events[0].start != b.start:
            wrong.append(f"{b.id}: event at {events[0].start}, booked at {b.start}")
    return wrong


async def _tagged(sandbox: Any, account: Account) -> dict[str, list[Any]]:
    parse = parse_google if account.provider == "google" else parse_graph
    found: dict[str, list[Any]] = {}
    for raw in await sandbox.control.list_events(account.sandbox_provider, account.email, account.calendar_id):
        event = parse(raw)
        tag = getattr(event, "appointment_tag", None)
        if tag and getattr(event, "status", "confirmed") != "cancelled" and not getattr(event, "removed", False):
            found.setdefault(tag, []).append(event)
    return found
