"""Which calendar: none yet (waiting), changed midway, also read, or another resource's."""

from __future__ import annotations

import secrets

from sqlalchemy import select, update

from jobs import sync, write
from tests.jobs import conftest_write
from tests.jobs.conftest_write import CREATE_PATH, Writes, slot
from worker.db import outbox
from worker.db.tables import CalendarLink, Resource, Unavailability

writes, write_settings = conftest_write.writes, conftest_write.write_settings  # this module's fixtures
no_faults_left = conftest_write.no_faults_left


async def test_without_a_write_calendar_entries_wait_visibly_then_are_written(writes: Writes, provider: str) -> None:
    account = await writes.account(provider, write=False, read=True)
    appt = f"a-{secrets.token_hex(4)}"
    await writes.put(account, appt, 1, slot(2, 9))
    assert (await writes.drain())["waiting"] == 1
    state = await writes.get(account, appt)
    assert (state["write"]["state"], state["write"]["lastError"]) == ("waiting_calendar", outbox.WAITING_ERROR)
    async with writes.deps.sessions() as session:
        assert await outbox.states_of(session=session, resource_id=account.resource_id) == {"waiting_calendar": 1}
    assert (await write.run_once(writes.deps))["claimed"] == 0  # parked, not spinning
    async with writes.deps.sessions() as session, session.begin():
        await session.execute(update(CalendarLink).where(CalendarLink.id == account.link_id).values(write=True))
    assert (await writes.drain())["written"] == 1
    assert [e.start for e in await writes.tagged(account, appt)] == [slot(2, 9)]
    assert (await writes.get(account, appt))["write"]["state"] == "written"


async def test_write_calendar_changed_midway(writes: Writes, provider: str) -> None:
    first = await writes.account(provider)
    old_appt, new_appt = f"old-{secrets.token_hex(3)}", f"new-{secrets.token_hex(3)}"
    await writes.put(first, old_appt, 1, slot(2, 9))
    await writes.drain()
    second = await writes.new_write_calendar(first, "Appointments")
    await writes.put(second, new_appt, 1, slot(2, 11))
    await writes.put(second, old_appt, 2, slot(4, 9))  # rescheduled where it already is
    await writes.drain()
    assert [(e.appointment_tag, e.start) for e in await writes.events(first)] == [(old_appt, slot(4, 9))]
    assert [(e.appointment_tag, e.start) for e in await writes.events(second)] == [(new_appt, slot(2, 11))]
    await writes.delete(second, old_appt)
    await writes.drain()
    assert await writes.events(first) == []
    assert [e.appointment_tag for e in await writes.events(second)] == [new_appt]


async def test_a_lost_create_is_retried_on_its_calendar_after_the_write_calendar_changed(
    writes: Writes, provider: str
) -> None:
    first = await writes.account(provider)
    await writes.sandbox.control.add_fault(
        provider=first.sb, method="POST", path=CREATE_PATH[provider], after_commit=True, reset=True, count=3
    )
    appt = f"a-{secrets.token_hex(4)}"
    await writes.put(first, appt, 1, slot(2, 9))
    assert (await write.run_once(writes.deps))["retry"] == 1
    await writes.sandbox.control.clear_faults()
    second = await writes.new_write_calendar(first, "Later")
    await writes.drain()
    assert [e.appointment_tag for e in await writes.events(first)] == [appt]
    assert await writes.events(second) == []


async def test_a_write_calendar_that_is_also_read_gives_no_unavailability_for_our_events(
    writes: Writes, provider: str
) -> None:
    account = await writes.account(provider, read=True)
    appt = f"a-{secrets.token_hex(4)}"
    await writes.put(account, appt, 1, slot(2, 9))
    await writes.drain()
    body = (
        {
            "summary": "dentist",
            "start": {"dateTime": slot(3, 9).isoformat()},
            "end": {"dateTime": slot(3, 10).isoformat()},
        }
        if provider == "google"
        else {
            "subject": "dentist",
            "start": {"dateTime": slot(3, 9).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {"dateTime": slot(3, 10).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        }
    )
    theirs = await writes.sandbox.control.create_event(account.sb, account.email, body, account.calendar_id)
    outcome = await sync.sync_link(writes.deps, account.link_id)
    assert outcome.status == "synced"
    async with writes.deps.sessions() as session:
        stmt = select(Unavailability.provider_event_id, Unavailability.start_at).where(
            Unavailability.link_id == account.link_id
        )
        rows = (await session.execute(stmt)).all()
    assert [tuple(r) for r in rows] == [(theirs["id"], slot(3, 9))]


async def test_an_appointment_moved_to_another_resource_moves_calendars(writes: Writes, provider: str) -> None:
    first = await writes.account(provider)
    other = await writes.account(provider)
    async with writes.deps.sessions() as session, session.begin():  # same company, so the move is allowed
        await session.execute(
            update(Resource).where(Resource.id == other.resource_id).values(company_id=first.company_id)
        )
    other.company_id = first.company_id
    appt = f"a-{secrets.token_hex(4)}"
    await writes.put(first, appt, 1, slot(2, 9))
    await writes.drain()
    await writes.put(other, appt, 2, slot(2, 9))
    await writes.drain()
    assert await writes.events(first) == []
    assert [e.appointment_tag for e in await writes.events(other)] == [appt]
