"""A main API that shares the database writes appointment + outbox rows with the documented SQL."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text

from tests.jobs import conftest_write
from tests.jobs.conftest_write import Account, Writes, slot
from worker.db.appointments import MAIN_API_UPSERT
from worker.db.tables import WriteOutbox

writes, write_settings = conftest_write.writes, conftest_write.write_settings  # this module's fixtures
no_faults_left = conftest_write.no_faults_left


async def main_api_writes(writes: Writes, account: Account, appt: str, version: int, start: datetime, **kw: Any) -> int:
    """Run the documented statement as the main API would; how many outbox rows it wrote."""
    params = {
        "id": appt,
        "resource_id": account.resource_id,
        "start_at": start,
        "end_at": start + timedelta(hours=1),
        "status": "confirmed",
        "title": f"Appointment {appt}",
        "description": None,
        "location": "Room 2",
        "attendees": json.dumps(["guest@example.com"]),
        "version": version,
    } | kw
    async with writes.deps.sessions() as session, session.begin():
        result = await session.execute(text(MAIN_API_UPSERT), params)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def test_the_documented_sql_confirms_reschedules_and_cancels(writes: Writes, provider: str) -> None:
    account = await writes.account(provider)
    appt = f"sql-{secrets.token_hex(4)}"
    assert await main_api_writes(writes, account, appt, 1, slot(2, 9)) == 1
    assert (await writes.drain())["written"] == 1
    [event] = await writes.tagged(account, appt)
    assert event.start == slot(2, 9)
    assert await main_api_writes(writes, account, appt, 1, slot(5, 9)) == 0  # same version: nothing
    async with writes.deps.sessions() as session:
        assert (await session.execute(select(WriteOutbox.id).where(WriteOutbox.appointment_id == appt))).all() == []
    assert await main_api_writes(writes, account, appt, 2, slot(3, 10)) == 1
    await writes.drain()
    assert [(e.id, e.start) for e in await writes.tagged(account, appt)] == [(event.id, slot(3, 10))]
    assert await main_api_writes(writes, account, appt, 3, slot(3, 10), status="cancelled") == 1
    await writes.drain()
    assert await writes.tagged(account, appt) == []
    async with writes.deps.sessions() as session:
        version = (await session.execute(text("SELECT version FROM appointments WHERE id = :i"), {"i": appt})).scalar()
    assert version == 3
