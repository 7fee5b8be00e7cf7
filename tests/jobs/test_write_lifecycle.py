"""Confirm → one event; reschedule → the same event moved; cancel → gone (both providers)."""

from __future__ import annotations

import secrets

from tests.jobs import conftest_write
from tests.jobs.conftest_write import Writes, slot

writes, write_settings = conftest_write.writes, conftest_write.write_settings  # this module's fixtures


async def test_confirm_reschedule_cancel(writes: Writes, provider: str) -> None:
    account = await writes.account(provider)
    appt = f"a-{secrets.token_hex(4)}"
    assert (await writes.put(account, appt, 1, slot(2, 9), location="Room 1", attendees=["x@example.com"]))[
        "ignored"
    ] is False
    assert (await writes.drain())["written"] == 1
    [event] = await writes.tagged(account, appt)
    assert (event.start, event.end, event.summary) == (slot(2, 9), slot(2, 10), f"Appointment {appt}")
    state = await writes.get(account, appt)
    assert state["write"]["state"] == "written"
    assert state["write"]["providerEventId"] == event.id
    assert (state["write"]["calendarId"], state["write"]["writtenVersion"]) == (account.calendar_id, 1)

    await writes.put(account, appt, 2, slot(3, 14))
    assert (await writes.drain())["written"] == 1
    [moved] = await writes.tagged(account, appt)
    assert moved.id == event.id
    assert (moved.start, moved.end) == (slot(3, 14), slot(3, 15))

    await writes.delete(account, appt)
    assert (await writes.drain())["deleted"] == 1
    assert await writes.tagged(account, appt) == []
    state = await writes.get(account, appt)
    assert (state["status"], state["write"]["state"], state["write"]["eventDeleted"]) == ("cancelled", "written", True)


async def test_confirmed_again_after_cancel_is_one_event(writes: Writes, provider: str) -> None:
    account = await writes.account(provider)
    appt = f"a-{secrets.token_hex(4)}"
    await writes.put(account, appt, 1, slot(2, 9))
    await writes.drain()
    await writes.put(account, appt, 2, slot(2, 9), status="cancelled")
    await writes.drain()
    await writes.put(account, appt, 3, slot(4, 11))
    await writes.drain()
    [event] = await writes.tagged(account, appt)
    assert event.start == slot(4, 11)


async def test_older_versions_are_ignored_and_change_nothing(writes: Writes, provider: str) -> None:
    account = await writes.account(provider)
    appt = f"a-{secrets.token_hex(4)}"
    await writes.put(account, appt, 5, slot(2, 9))
    await writes.drain()
    assert (await writes.put(account, appt, 4, slot(5, 9)))["ignored"] is True
    assert (await writes.put(account, appt, 5, slot(5, 9), status="cancelled"))["ignored"] is True
    assert (await writes.drain()).get("claimed", 0) == 0
    [event] = await writes.tagged(account, appt)
    assert event.start == slot(2, 9)


async def test_a_cancelled_appointment_never_written_makes_no_call(writes: Writes, provider: str) -> None:
    account = await writes.account(provider)
    appt = f"a-{secrets.token_hex(4)}"
    await writes.put(account, appt, 1, slot(2, 9), status="cancelled")
    assert (await writes.drain())["unchanged"] == 1
    assert await writes.events(account) == []


async def test_many_versions_before_a_drain_coalesce_into_one_write(writes: Writes, provider: str) -> None:
    account = await writes.account(provider)
    appt = f"a-{secrets.token_hex(4)}"
    for version in range(1, 6):
        await writes.put(account, appt, version, slot(2, 8 + version))
    counts = await writes.drain()
    assert (counts["claimed"], counts["written"]) == (1, 1)
    [event] = await writes.tagged(account, appt)
    assert event.start == slot(2, 13)
