"""Appointment writes against the sandbox: idempotent create, patch with etags, delete."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from providers import errors
from providers.base import AppointmentBody
from providers.http import RetryPolicy
from providers.sandbox import Sandbox

from .conftest import WINDOW, Account, MakeAccount

BODY = AppointmentBody(
    appointment_id="appt-42",
    title="Consultation",
    start=datetime(2026, 12, 3, 14, 0, tzinfo=UTC),
    end=datetime(2026, 12, 3, 15, 0, tzinfo=UTC),
    time_zone="Europe/Berlin",
    description="first visit",
    location="Room 1",
)
EVENTS_PATH = {"google": r"/calendars/[^/]+/events$", "microsoft": r"/me/calendars/[^/]+/events$"}


async def stored(sandbox: Sandbox, acct: Account) -> list[dict[str, Any]]:
    """The events the sandbox holds for the account's calendar, minus Google tombstones."""
    events = await sandbox.control.list_events(acct.provider, acct.email, acct.calendar_id)
    return [e for e in events if e.get("status") != "cancelled"]


async def test_create_is_tagged_and_idempotent(sandbox: Sandbox, account: MakeAccount, provider: str) -> None:
    acct = await account(provider)

    first = await acct.client.create_event(acct.calendar_id, BODY)
    second = await acct.client.create_event(acct.calendar_id, BODY)

    assert first.id == second.id and first.etag
    assert [e["id"] for e in await stored(sandbox, acct)] == [first.id]
    event = await acct.client.get_event(acct.calendar_id, first.id)
    assert (event.appointment_tag, event.start, event.end, event.summary) == (
        "appt-42",
        BODY.start,
        BODY.end,
        "Consultation",
    )


async def test_create_survives_a_response_lost_after_commit(
    sandbox: Sandbox, account: MakeAccount, provider: str
) -> None:
    acct = await account(provider)
    await sandbox.control.add_fault(
        provider=provider, method="POST", path=EVENTS_PATH[provider], after_commit=True, reset=True, count=1
    )

    written = await acct.client.create_event(acct.calendar_id, BODY)

    events = await stored(sandbox, acct)
    assert [e["id"] for e in events] == [written.id]
    posts = [r for r in await sandbox.control.requests(provider) if r["method"] == "POST"]
    assert len(posts) == 2  # the lost one and the retry


async def test_create_after_a_lost_create_and_a_reschedule_lands_at_the_new_time(
    sandbox: Sandbox, account: MakeAccount, provider: str
) -> None:
    acct = await account(provider, policy=RetryPolicy(attempts=1, base=0.01, cap=0.01, deadline=5))
    await sandbox.control.add_fault(
        provider=provider, method="POST", path=EVENTS_PATH[provider], after_commit=True, reset=True, count=1
    )
    with pytest.raises(errors.UnavailableError):
        await acct.client.create_event(acct.calendar_id, BODY)

    moved = replace(BODY, start=BODY.start + timedelta(days=1), end=BODY.end + timedelta(days=1))
    written = await acct.client.create_event(acct.calendar_id, moved)

    assert [e["id"] for e in await stored(sandbox, acct)] == [written.id]
    event = await acct.client.get_event(acct.calendar_id, written.id)
    assert (event.start, event.end) == (moved.start, moved.end)


async def test_patch_moves_and_stale_etag_is_refused(sandbox: Sandbox, account: MakeAccount, provider: str) -> None:
    acct = await account(provider)
    created = await acct.client.create_event(acct.calendar_id, BODY)
    moved = replace(BODY, start=BODY.start + timedelta(hours=2), end=BODY.end + timedelta(hours=2), title="Moved")

    patched = await acct.client.patch_event(acct.calendar_id, created.id, moved, etag=created.etag)

    assert patched.id == created.id and patched.etag != created.etag
    event = await acct.client.get_event(acct.calendar_id, created.id)
    assert (event.start, event.summary, event.appointment_tag) == (moved.start, "Moved", "appt-42")
    with pytest.raises(errors.PreconditionFailedError):
        await acct.client.patch_event(acct.calendar_id, created.id, BODY, etag=created.etag)


async def test_delete_is_idempotent(sandbox: Sandbox, account: MakeAccount, provider: str) -> None:
    acct = await account(provider)
    created = await acct.client.create_event(acct.calendar_id, BODY)

    await acct.client.delete_event(acct.calendar_id, created.id)
    await acct.client.delete_event(acct.calendar_id, created.id)
    await acct.client.delete_event(acct.calendar_id, "neverexisted0")

    assert await stored(sandbox, acct) == []


async def test_google_recreate_after_delete_resurrects_the_event(sandbox: Sandbox, account: MakeAccount) -> None:
    acct = await account("google")
    created = await acct.client.create_event(acct.calendar_id, BODY)
    await acct.client.delete_event(acct.calendar_id, created.id)

    again = await acct.client.create_event(acct.calendar_id, BODY)

    assert again.id == created.id
    event = await acct.client.get_event(acct.calendar_id, again.id)
    assert (event.removed, event.status) == (False, "confirmed")


async def test_written_events_are_recognised_when_read_back(
    sandbox: Sandbox, account: MakeAccount, provider: str
) -> None:
    acct = await account(provider)
    written = await acct.client.create_event(acct.calendar_id, BODY)

    seen = [e async for page in acct.client.list_changes(acct.calendar_id, None, WINDOW) for e in page.events]

    assert [(e.id, e.appointment_tag) for e in seen] == [(written.id, "appt-42")]


async def test_missing_event_is_not_found(sandbox: Sandbox, account: MakeAccount, provider: str) -> None:
    acct = await account(provider)
    with pytest.raises(errors.NotFoundError):
        await acct.client.get_event(acct.calendar_id, "neverexisted0")
