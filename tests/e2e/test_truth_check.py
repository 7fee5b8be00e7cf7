"""The checkers the reliability runs rely on really fail: a missing, extra or moved row, a lost or doubled event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from providers.google.mapping import APPOINTMENT_PROPERTY
from tests.e2e.chaos import World, wait_converged
from tests.e2e.world import (
    AppointmentStream,
    Booking,
    ChangeStream,
    booking_mismatches,
    seed_account,
    today_window,
    truth,
)
from worker.crypto import TokenCipher
from worker.db.tables import Unavailability
from worker.db.unavailability import BusyRow, upsert


async def _store_truth(sessions: async_sessionmaker[AsyncSession], world: World) -> None:
    """Write exactly the truth as rows (what a perfect sync would leave)."""
    for account in world.accounts:
        rows = await truth(world.sandbox, world.http, account, today_window())
        busy = [BusyRow(event_id, start, end) for event_id, start, end in rows]
        async with sessions() as session, session.begin():
            await upsert(
                session=session,
                resource_id=account.resource_id,
                link_id=account.link_id,
                rows=busy,
                now=datetime.now(UTC),
            )


def _z(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_convergence_check_catches_missing_extra_and_moved_rows(
    own_sandbox: Any, sessions: async_sessionmaker[AsyncSession], cipher: TokenCipher, http: aiohttp.ClientSession
) -> None:
    accounts = [await seed_account(sessions, own_sandbox, cipher, provider=p) for p in ("google", "outlook")]
    changes = ChangeStream(own_sandbox, accounts, seed=2)
    for _ in range(12):
        await changes.step()
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    busy = {
        "summary": "surely busy",
        "start": {"dateTime": _z(start)},
        "end": {"dateTime": _z(start + timedelta(hours=1))},
    }
    await own_sandbox.control.create_event("google", accounts[0].email, busy)
    world = World(own_sandbox, sessions, http, accounts)
    await _store_truth(sessions, world)
    assert await wait_converged(world, 1) > 0

    u = Unavailability
    async with sessions() as session, session.begin():
        await session.execute(
            update(u).where(u.link_id == accounts[0].link_id).values(end_at=u.end_at + timedelta(minutes=1))
        )
    with pytest.raises(AssertionError, match="differs"):
        await wait_converged(world, 0.5)
    async with sessions() as session, session.begin():
        await session.execute(delete(u).where(u.link_id == accounts[0].link_id))
    with pytest.raises(AssertionError, match="missing"):
        await wait_converged(world, 0.5)


async def test_booking_check_catches_lost_and_doubled_events(
    own_sandbox: Any, sessions: async_sessionmaker[AsyncSession], cipher: TokenCipher
) -> None:
    account = await seed_account(sessions, own_sandbox, cipher, provider="google")
    stream = AppointmentStream([], [account], "unused", seed=1)
    start = datetime(2027, 1, 5, 10, tzinfo=UTC)
    stream.bookings["appt-lost"] = Booking(account, "appt-lost", 1, start)
    stream.bookings["appt-gone"] = Booking(account, "appt-gone", 2, start, status="cancelled")
    stream.bookings["appt-twice"] = Booking(account, "appt-twice", 1, start)
    tagged = {
        "summary": "booking",
        "start": {"dateTime": "2027-01-05T10:00:00Z"},
        "end": {"dateTime": "2027-01-05T10:30:00Z"},
        "extendedProperties": {"private": {APPOINTMENT_PROPERTY: "appt-twice"}},
    }
    for _ in range(2):
        await own_sandbox.control.create_event("google", account.email, tagged)
    wrong = await booking_mismatches(own_sandbox, stream)
    assert sorted(wrong) == ["appt-lost: confirmed but 0 events", "appt-twice: confirmed but 2 events"]
