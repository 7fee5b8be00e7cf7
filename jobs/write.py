"""The write job: drain the outbox so each confirmed appointment is one event on a write calendar.

`write_appointment` handles one leased entry: it re-reads the appointment (the entry only
says "look again"), decides, calls the provider and records the result. `run_once` drains
what is due once (what tests call); `sweep` is the loop woken by the PUT handler's signal.

Exactly once: before a create is sent its calendar is pinned in appointment_events, and the
provider layer makes a repeated create return the first event (Google: an event id derived
from the appointment id; Graph: a transactionId). So a create whose answer was lost is
simply sent again, to the same calendar, even if the write calendar changed meanwhile.

Errors: ReauthRequired parks the entry until the connection is active again; any other
permanent refusal (403 no write access, 404 calendar, 400) marks it failed and stops its
retries; everything else is retried with per-entry backoff (full jitter).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from jobs.backoff import next_attempt
from jobs.clients import client_for
from providers.base import AppointmentBody, CalendarClient, WrittenEvent
from providers.errors import NotFoundError, PermanentError, ReauthRequiredError
from providers.google.client import GoogleCalendarClient
from worker import cache, wakeups
from worker.budget import budget_for
from worker.crashpoints import crashpoint
from worker.db import appointments as appts
from worker.db import outbox
from worker.db.appointments import Target, WritePlan
from worker.db.connections import mark_reauth_required
from worker.db.notifications import company_of_resource, enqueue_event
from worker.db.outbox import Entry
from worker.db.tables import AppointmentEvent
from worker.deps import Deps
from worker.logging import get_logger

log = get_logger(__name__)

Outcome = Literal["written", "deleted", "unchanged", "waiting", "failed", "retry", "reauth_required", "skipped"]
CHANGED: frozenset[str] = frozenset({"written", "deleted"})
REAUTH_ERROR = "connection needs re-authorisation"


@dataclass
class Clients:
    """One provider client per connection for a batch, so its writes share one access token."""

    deps: Deps
    by_connection: dict[int, CalendarClient] = field(default_factory=dict)

    def of(self, target: Target) -> CalendarClient:
        conn = target.connection
        if conn.id not in self.by_connection:
            self.by_connection[conn.id] = client_for(self.deps, conn, budget=budget_for(self.deps))
        return self.by_connection[conn.id]


async def run_once(deps: Deps) -> dict[str, int]:
    """Write every due outbox entry once, `write.concurrency` at a time; counts by outcome."""
    w = deps.settings.write
    async with deps.sessions() as session, session.begin():
        entries = await outbox.claim_due(
            session=session, owner=deps.worker_id, now=deps.clock.now(), lease_seconds=w.lease_seconds, limit=w.batch
        )
    limit, clients = asyncio.Semaphore(w.concurrency), Clients(deps)

    async def one(entry: Entry) -> Outcome:
        async with limit:
            return await write_appointment(deps, entry, clients=clients)

    outcomes = await asyncio.gather(*(one(e) for e in entries))
    changed = {e.resource_id for e, o in zip(entries, outcomes, strict=True) if o in CHANGED}
    await cache.purge(deps.redis, deps.prefix, changed)
    return {"claimed": len(entries), **Counter(outcomes)}


async def write_appointment(deps: Deps, entry: Entry, *, clients: Clients | None = None) -> Outcome:
    """Bring the provider in line with the entry's appointment and record it; never raises."""
    started = time.monotonic()
    try:
        outcome, error = await _write(deps, entry, clients or Clients(deps)), None
    except Exception as exc:  # a failure of one write backs that entry off; others go on
        error = f"{type(exc).__name__}: {exc}"[:500]
        outcome = await _retry_later(deps, entry, error)
    log.info(
        f"write.{outcome}",
        appointment_id=entry.appointment_id,
        resource_id=entry.resource_id,
        attempt=entry.attempts + 1,
        error=error,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )
    return outcome


async def _write(deps: Deps, entry: Entry, clients: Clients) -> Outcome:
    async with deps.sessions() as session:
        plan = await appts.write_plan(session=session, appointment_id=entry.appointment_id)
    if plan is None:
        return "skipped"  # the appointment is gone (its entry went with it)
    event = _live(plan.event)
    if event is not None and plan.pinned is not None and plan.pinned.link.resource_id != plan.appointment.resource_id:
        return await _leave_old_calendar(deps, entry, plan, event, clients)
    target = plan.pinned if event is not None else plan.write
    if plan.appointment.status == "cancelled" and event is None:
        return await _complete(deps, entry, plan, "unchanged")
    if event is not None and event.provider_event_id and event.written_version == plan.appointment.version:
        return await _complete(deps, entry, plan, "unchanged")
    if target is None or target.connection.status != "active":
        return await _wait(deps, entry, REAUTH_ERROR if target is not None else outbox.WAITING_ERROR)
    try:
        return await _apply(deps, entry, plan, event, target, clients.of(target))
    except ReauthRequiredError as exc:
        return await _reauth(deps, entry, target, exc)
    except PermanentError as exc:
        return await _give_up(deps, entry, plan, f"{type(exc).__name__}: {exc}"[:500])


def _live(event: AppointmentEvent | None) -> AppointmentEvent | None:
    """The event row if it stands for an event that exists (or may exist: pinned, no id yet)."""
    return event if event is not None and not event.deleted else None


async def _apply(
    deps: Deps, entry: Entry, plan: WritePlan, event: AppointmentEvent | None, target: Target, client: CalendarClient
) -> Outcome:
    """The provider calls: delete a cancelled one, patch a known event, else create."""
    a, calendar_id, body = plan.appointment, target.link.calendar_id, body_of(plan)
    if a.status == "cancelled":
        assert event is not None  # _write completes cancelled appointments without an event
        await _discard(client, calendar_id, event, body)
        async with deps.sessions() as session, session.begin():
            await appts.record_deleted(session=session, appointment_id=a.id, version=a.version)
            await _done(session, deps, entry, a.version)
        return "deleted"
    if event is not None and event.provider_event_id:
        written = await _patch_or_recreate(client, calendar_id, event.provider_event_id, body)
    else:
        if event is None:
            async with deps.sessions() as session, session.begin():
                await appts.pin(session=session, appointment_id=a.id, link_id=target.link.id)
        written = await client.create_event(calendar_id, body)
        crashpoint("write.after_create_before_record")
    async with deps.sessions() as session, session.begin():
        await appts.record_written(
            session=session,
            appointment_id=a.id,
            link_id=target.link.id,
            provider_event_id=written.id,
            etag=written.etag,
            version=a.version,
        )
        await _done(session, deps, entry, a.version)
    return "written"


async def _patch_or_recreate(
    client: CalendarClient, calendar_id: str, event_id: str, body: AppointmentBody
) -> WrittenEvent:
    """Move the event; if someone deleted it, create it again (same idempotency key)."""
    try:
        written = await client.patch_event(calendar_id, event_id, body)
    except NotFoundError:
        return await client.create_event(calendar_id, body)
    if isinstance(client, GoogleCalendarClient) and (await client.get_event(calendar_id, written.id)).removed:
        # Google keeps a deleted event and patches it without reviving it (the body sends no
        # status; /tmp/provider_findings.txt); create's 409 path revives it. Drop once fixed.
        return await client.create_event(calendar_id, body)
    return written


async def _discard(client: CalendarClient, calendar_id: str, event: AppointmentEvent, body: AppointmentBody) -> None:
    """Delete the event; a pinned create whose answer was lost is first made certain, then deleted."""
    event_id = event.provider_event_id
    if event_id is None:
        event_id = (await client.create_event(calendar_id, body)).id
    await client.delete_event(calendar_id, event_id)


async def _leave_old_calendar(
    deps: Deps, entry: Entry, plan: WritePlan, event: AppointmentEvent, clients: Clients
) -> Outcome:
    """The appointment moved to another resource: remove it from the old calendar, then write anew."""
    old = plan.pinned
    assert old is not None
    if old.connection.status == "active":
        with contextlib.suppress(PermanentError):  # a calendar we cannot touch keeps its copy
            await _discard(clients.of(old), old.link.calendar_id, event, body_of(plan))
    async with deps.sessions() as session, session.begin():
        await appts.forget_event(session=session, appointment_id=plan.appointment.id)
    return await _write(deps, entry, clients)


def body_of(plan: WritePlan) -> AppointmentBody:
    """What the provider gets for the appointment, in the resource's time zone."""
    a = plan.appointment
    return AppointmentBody(
        appointment_id=a.id,
        title=a.title,
        start=a.start_at,
        end=a.end_at,
        time_zone=plan.timezone,
        description=a.description,
        location=a.location,
        attendees=tuple(a.attendees),
    )


# --- recording the outcome ------------------------------------------------------------------


async def _done(session: AsyncSession, deps: Deps, entry: Entry, version: int) -> None:
    await outbox.complete(
        session=session, entry_id=entry.id, owner=deps.worker_id, version=version, now=deps.clock.now()
    )


async def _complete(deps: Deps, entry: Entry, plan: WritePlan, outcome: Outcome) -> Outcome:
    async with deps.sessions() as session, session.begin():
        await _done(session, deps, entry, plan.appointment.version)
    return outcome


async def _wait(deps: Deps, entry: Entry, reason: str) -> Outcome:
    async with deps.sessions() as session, session.begin():
        await outbox.wait_for_calendar(session=session, entry_id=entry.id, owner=deps.worker_id, error=reason)
    return "waiting"


async def _reauth(deps: Deps, entry: Entry, target: Target, exc: ReauthRequiredError) -> Outcome:
    """The grant is dead: mark the connection; the entry waits until it is active again."""
    async with deps.sessions() as session, session.begin():
        await mark_reauth_required(
            session=session,
            connection_id=target.connection.id,
            reason=str(exc) or "invalid_grant",
            now=deps.clock.now(),
        )
        await outbox.wait_for_calendar(session=session, entry_id=entry.id, owner=deps.worker_id, error=REAUTH_ERROR)
    return "reauth_required"


async def _give_up(deps: Deps, entry: Entry, plan: WritePlan, error: str) -> Outcome:
    """A permanent refusal: stop retrying, show why, tell the main API once."""
    a, now = plan.appointment, deps.clock.now()
    async with deps.sessions() as session, session.begin():
        await appts.unpin(session=session, appointment_id=a.id)  # nothing was created
        failed = await outbox.give_up(
            session=session, entry_id=entry.id, owner=deps.worker_id, error=error, version=a.version, now=now
        )
        company_id = await company_of_resource(session=session, resource_id=a.resource_id)
        if failed and company_id is not None:
            obj = {"appointmentId": a.id, "version": a.version, "error": error}
            await enqueue_event(
                session=session,
                company_id=company_id,
                event_type="appointment.writeFailed",
                resource_id=a.resource_id,
                obj=obj,
                now=now,
            )
    return "failed"


async def _retry_later(deps: Deps, entry: Entry, error: str) -> Outcome:
    """Back the entry off (full jitter, doubling per attempt); its lease is released."""
    w = deps.settings.write
    delay = next_attempt(entry.attempts + 1, base=w.backoff_base_seconds, cap=w.backoff_cap_seconds)
    with contextlib.suppress(Exception):  # the database is down: the lease expires and it is retried
        async with deps.sessions() as session, session.begin():
            await outbox.retry_later(
                session=session,
                entry_id=entry.id,
                owner=deps.worker_id,
                error=error,
                next_attempt_at=deps.clock.now() + timedelta(seconds=delay),
            )
    return "retry"


# --- the long-running sweep -------------------------------------------------------------------

# Like the sync sweep: the scheduler starts one every SHIFT_SECONDS and each runs one second less,
# so one loop is alive per process and a loop that died is replaced within a shift.
SHIFT_SECONDS = 30


async def sweep(deps: Deps, *, seconds: float = SHIFT_SECONDS - 1) -> None:
    """Drain due writes whenever woken (a PUT's Redis signal) or every `write.sweep_seconds`."""
    until = time.monotonic() + seconds
    async with _WakeUps(deps) as woken:
        while time.monotonic() < until:
            try:
                counts = await asyncio.shield(deps.tasks.spawn(run_once(deps), name="write.batch"))
            except Exception as exc:  # the database or Redis is down: try again next tick
                log.warning("write.sweep_failed", error=type(exc).__name__)
                counts = {}
            if counts.get("claimed", 0) >= deps.settings.write.batch:
                continue  # more is due: no pause
            await woken.wait(min(deps.settings.write.sweep_seconds, max(0.0, until - time.monotonic())))


class _WakeUps:
    """A subscription to the outbox wake-up channel; `wait` returns on a signal or a timeout."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._pubsub = deps.redis.pubsub(ignore_subscribe_messages=True)
        self._ok = False

    async def __aenter__(self) -> _WakeUps:
        try:
            await self._pubsub.subscribe(wakeups.channel(self._deps.prefix, wakeups.OUTBOX))
            self._ok = True
        except Exception as exc:  # without Redis we still sweep on the timer
            log.warning("write.wakeups_unavailable", error=type(exc).__name__)
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()

    async def wait(self, seconds: float) -> None:
        if not self._ok:
            await asyncio.sleep(seconds)
            return
        try:
            await self._pubsub.get_message(timeout=seconds)
        except Exception:
            self._ok = False
            await asyncio.sleep(seconds)
