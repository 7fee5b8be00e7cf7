"""A sync reports to the main API, once each: our events moved or deleted at the provider,
and external busy time that now overlaps a confirmed appointment."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from jobs import sync
from tests.jobs import conftest_write
from tests.jobs.conftest_write import Account, Writes, slot
from worker.crypto import new_key
from worker.db import notifications
from worker.db.tables import WebhookDelivery

writes, write_settings = conftest_write.writes, conftest_write.write_settings  # this module's fixtures
no_faults_left = conftest_write.no_faults_left


async def _subscribe(writes: Writes, account: Account) -> None:
    async with writes.deps.sessions() as session, session.begin():
        await notifications.create_endpoint(
            session=session,
            company_id=account.company_id,
            url="http://127.0.0.1:9/hook",
            event_types=["appointment.changedExternally", "appointment.conflict"],
            secret_enc=writes.deps.cipher.encrypt(new_key()),
        )


async def _reported(writes: Writes, account: Account) -> list[tuple[str, dict[str, Any]]]:
    async with writes.deps.sessions() as session:
        rows = await session.execute(
            select(WebhookDelivery.event_type, WebhookDelivery.payload).order_by(WebhookDelivery.created_at)
        )
        return [(t, p["object"]) for t, p in rows if p["resourceId"] == account.resource_id]


def _event(provider: str, start: datetime, minutes: int = 60) -> dict[str, Any]:
    end = start + timedelta(minutes=minutes)
    if provider == "google":
        return {"summary": "x", "start": {"dateTime": start.isoformat()}, "end": {"dateTime": end.isoformat()}}
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {
        "subject": "x",
        "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime(fmt), "timeZone": "UTC"},
    }


async def _written(writes: Writes, provider: str) -> tuple[Account, str, str]:
    account = await writes.account(provider, read=True)
    await _subscribe(writes, account)
    appt = f"a-{secrets.token_hex(4)}"
    await writes.put(account, appt, 1, slot(2, 9))
    await writes.drain()
    [event] = await writes.tagged(account, appt)
    assert (await sync.sync_link(writes.deps, account.link_id)).status == "synced"
    return account, appt, event.id


async def test_an_event_we_wrote_moved_at_the_provider_is_reported_once(writes: Writes, provider: str) -> None:
    account, appt, event_id = await _written(writes, provider)
    moved = _event(provider, slot(2, 14))
    patch = {"start": moved["start"], "end": moved["end"]}
    await writes.sandbox.control.patch_event(account.sb, account.email, event_id, patch, account.calendar_id)
    await sync.sync_link(writes.deps, account.link_id)
    await sync.sync_link(writes.deps, account.link_id, interactive=True)
    reported = await _reported(writes, account)
    assert [(t, o["appointmentId"], o["change"]) for t, o in reported] == [
        ("appointment.changedExternally", appt, "moved")
    ]
    assert [e.start for e in await writes.tagged(account, appt)] == [slot(2, 14)]  # reported, not undone


async def test_an_event_we_wrote_deleted_at_the_provider_is_reported_once(writes: Writes, provider: str) -> None:
    account, appt, event_id = await _written(writes, provider)
    await writes.sandbox.control.delete_event(account.sb, account.email, event_id, account.calendar_id)
    await sync.sync_link(writes.deps, account.link_id)
    await sync.sync_link(writes.deps, account.link_id, interactive=True)
    reported = await _reported(writes, account)
    assert [(t, o["appointmentId"], o["change"]) for t, o in reported] == [
        ("appointment.changedExternally", appt, "deleted")
    ]
    assert await writes.tagged(account, appt) == []  # not silently re-created


async def test_external_busy_time_over_a_confirmed_appointment_is_a_conflict(writes: Writes, provider: str) -> None:
    account, appt, _ = await _written(writes, provider)
    clash = await writes.sandbox.control.create_event(
        account.sb, account.email, _event(provider, slot(2, 9) + timedelta(minutes=30)), account.calendar_id
    )
    await writes.sandbox.control.create_event(
        account.sb, account.email, _event(provider, slot(4, 9)), account.calendar_id
    )
    await sync.sync_link(writes.deps, account.link_id)
    await sync.sync_link(writes.deps, account.link_id, interactive=True)
    reported = await _reported(writes, account)
    assert [(t, o["appointmentId"], o["providerEventId"]) for t, o in reported] == [
        ("appointment.conflict", appt, clash["id"])
    ]
