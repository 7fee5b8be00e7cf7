"""Faults: lost answers after commit, errors on every call, 404 on patch, 403, a dead grant."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from jobs import write
from tests.jobs import conftest_write
from tests.jobs.conftest_write import CREATE_PATH, READ_ONLY_SCOPE, Writes, slot
from worker.config import with_overrides
from worker.db.tables import ExternalCalendar, WebhookDelivery, WebhookEndpoint, WriteOutbox

writes, write_settings = conftest_write.writes, conftest_write.write_settings  # this module's fixtures
no_faults_left = conftest_write.no_faults_left


async def test_a_create_whose_answer_is_lost_after_commit_makes_one_event(writes: Writes, provider: str) -> None:
    account = await writes.account(provider)
    # More lost answers than one request's retries: the job itself backs off and tries again.
    await writes.sandbox.control.add_fault(
        provider=account.sb, method="POST", path=CREATE_PATH[provider], after_commit=True, reset=True, count=4
    )
    appt = f"a-{secrets.token_hex(4)}"
    await writes.put(account, appt, 1, slot(2, 9))
    counts = await writes.drain()
    assert counts["retry"] >= 1 and counts["written"] == 1
    events = await writes.tagged(account, appt)
    assert [e.start for e in events] == [slot(2, 9)]
    assert (await writes.get(account, appt))["write"]["providerEventId"] == events[0].id


async def test_a_lost_create_then_a_reschedule_is_one_event_at_the_new_time(writes: Writes, provider: str) -> None:
    account = await writes.account(provider)
    await writes.sandbox.control.add_fault(
        provider=account.sb, method="POST", path=CREATE_PATH[provider], after_commit=True, reset=True, count=3
    )
    appt = f"a-{secrets.token_hex(4)}"
    await writes.put(account, appt, 1, slot(2, 9))
    assert (await write.run_once(writes.deps))["retry"] == 1  # version 1 exists at the provider, unrecorded
    await writes.put(account, appt, 2, slot(6, 15))
    await writes.drain()
    assert [e.start for e in await writes.tagged(account, appt)] == [slot(6, 15)]


async def test_faults_on_every_call_still_end_exactly_once(writes: Writes, provider: str) -> None:
    account = await writes.account(provider)
    control = writes.sandbox.control
    await control.add_fault(provider=account.sb, status=503, fraction=0.3, seed=7)
    await control.add_fault(provider=account.sb, after_commit=True, reset=True, fraction=0.3, seed=11)
    appts = [f"a{i}-{secrets.token_hex(3)}" for i in range(6)]
    for i, appt in enumerate(appts):
        await writes.put(account, appt, 1, slot(2 + i, 9))
    await writes.drain(seconds=60)
    for i, appt in enumerate(appts[:4]):
        await writes.put(account, appt, 2, slot(2 + i, 16))  # reschedule four
    for appt in appts[2:5]:
        await writes.delete(account, appt)  # cancel three (two of them rescheduled)
    await writes.drain(seconds=60)
    await control.clear_faults()
    expected = {appts[0]: slot(2, 16), appts[1]: slot(3, 16), appts[5]: slot(7, 9)}
    events = await writes.events(account)
    assert sorted((e.appointment_tag or "", e.start) for e in events) == sorted(expected.items())
    faults = await control.requests(account.sb)
    assert any(r["status"] == 503 for r in faults) and any(r["status"] == "reset" for r in faults)


async def test_an_event_deleted_by_the_user_is_recreated_on_reschedule(writes: Writes, provider: str) -> None:
    account = await writes.account(provider)
    appt = f"a-{secrets.token_hex(4)}"
    await writes.put(account, appt, 1, slot(2, 9))
    await writes.drain()
    [event] = await writes.tagged(account, appt)
    await writes.sandbox.control.delete_event(account.sb, account.email, event.id, account.calendar_id)
    await writes.put(account, appt, 2, slot(3, 9))
    await writes.drain()
    assert [e.start for e in await writes.tagged(account, appt)] == [slot(3, 9)]


async def test_no_write_access_fails_visibly_and_is_not_retried(writes: Writes, provider: str) -> None:
    account = await writes.account(provider, scope=READ_ONLY_SCOPE[provider])
    async with writes.deps.sessions() as session, session.begin():
        session.add(
            WebhookEndpoint(
                id=secrets.token_hex(8),
                company_id=account.company_id,
                url="http://127.0.0.1:9/",
                event_types=["appointment.writeFailed"],
                secret_enc=writes.deps.cipher.encrypt("s"),
            )
        )
    appt = f"a-{secrets.token_hex(4)}"
    await writes.put(account, appt, 1, slot(2, 9))
    counts = await writes.drain()
    assert counts == {"claimed": 1, "failed": 1}
    state = await writes.get(account, appt)
    assert state["write"]["state"] == "failed"
    assert "Forbidden" in state["write"]["lastError"] or "Scope" in state["write"]["lastError"]
    assert (await write.run_once(writes.deps))["claimed"] == 0  # retries stopped
    async with writes.deps.sessions() as session:
        sent = (await session.execute(select(WebhookDelivery.event_type, WebhookDelivery.payload))).all()
    assert [(t, p["object"]["appointmentId"]) for t, p in sent if p["resourceId"] == account.resource_id] == [
        ("appointment.writeFailed", appt)
    ]
    assert await writes.events(account) == []
    # A newer version is tried again (and refused again, once).
    await writes.put(account, appt, 2, slot(2, 10))
    assert (await writes.drain())["failed"] == 1


async def test_a_dead_grant_marks_reauth_and_waits_until_reconnected(writes: Writes, provider: str) -> None:
    account = await writes.account(provider)
    await writes.sandbox.control.revoke_grant(account.sb, account.email)
    appt = f"a-{secrets.token_hex(4)}"
    await writes.put(account, appt, 1, slot(2, 9))
    assert (await writes.drain())["reauth_required"] == 1
    state = await writes.get(account, appt)
    assert state["write"]["state"] == "waiting_calendar"
    assert "re-authorisation" in state["write"]["lastError"]
    assert (await write.run_once(writes.deps))["claimed"] == 0
    # The resource reconnects: new tokens, connection active again → the entry is picked up.
    issued = await writes.sandbox.control.issue_tokens(account.sb, account.email)
    async with writes.deps.sessions() as session, session.begin():
        conn = await session.get(ExternalCalendar, account.connection_id)
        assert conn is not None and conn.status == "reauth_required"
        conn.status, conn.refresh_token_enc = "active", writes.deps.cipher.encrypt(issued["refresh_token"])
    assert (await writes.drain())["written"] == 1
    assert len(await writes.tagged(account, appt)) == 1


async def test_two_workers_never_write_one_entry_twice(writes: Writes, provider: str) -> None:
    account = await writes.account(provider)
    appts = [f"a{i}-{secrets.token_hex(3)}" for i in range(20)]
    for i, appt in enumerate(appts):
        await writes.put(account, appt, 1, slot(2, 0) + (slot(2, 1) - slot(2, 0)) * i)
    other = dataclasses.replace(writes.deps, worker_id="writer-b")
    first, second = await asyncio.gather(write.run_once(writes.deps), write.run_once(other))
    assert first["claimed"] + second["claimed"] == 20
    assert first.get("written", 0) + second.get("written", 0) == 20
    assert sorted(e.appointment_tag or "" for e in await writes.events(account)) == sorted(appts)
    async with writes.deps.sessions() as session:
        left = (
            await session.execute(select(WriteOutbox.id).where(WriteOutbox.resource_id == account.resource_id))
        ).all()
    assert left == []


async def test_a_slow_batch_keeps_its_leases(writes: Writes, provider: str) -> None:
    account = await writes.account(provider)
    deps = dataclasses.replace(writes.deps, settings=with_overrides(writes.deps.settings, write={"lease_seconds": 5}))
    await writes.sandbox.control.add_fault(
        provider=account.sb, method="POST", path=CREATE_PATH[provider], latency_ms=2500, count=1
    )
    appt = f"a-{secrets.token_hex(4)}"
    await writes.put(account, appt, 1, slot(2, 9))
    batch = asyncio.ensure_future(write.run_once(deps))
    first = await _lease_of(writes, appt, lambda at: at is not None)
    extended = await _lease_of(writes, appt, lambda at: at is not None and at > first)
    assert extended > first
    assert (await batch)["written"] == 1


async def _lease_of(writes: Writes, appt: str, wanted: Callable[[Any], bool], seconds: float = 5.0) -> Any:
    """Poll the entry's lease expiry until `wanted` holds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        async with writes.deps.sessions() as session:
            stmt = select(WriteOutbox.lease_expires_at).where(WriteOutbox.appointment_id == appt)
            at = (await session.execute(stmt)).scalar_one_or_none()
        if wanted(at):
            return at
        await asyncio.sleep(0.05)
    raise AssertionError("the lease did not change as expected")
