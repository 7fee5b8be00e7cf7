"""The write job: drain the outbox so each confirmed appointment is one event on a write calendar.

A batch of leased entries is handled in four steps: read each appointment's stored state
(the entry only says "look again"), `decide` what to do (pure), call the providers, and record
every outcome in one transaction. `run_once` writes one due batch (what tests call);
`write_appointment` one entry; `sweep` is the loop woken by the PUT handler's signal.

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from jobs import sweeping
from jobs.backoff import next_attempt
from jobs.clients import client_for
from providers.base import AppointmentBody, CalendarClient, WrittenEvent
from providers.errors import NotFoundError, PermanentError, ReauthRequiredError
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
from worker.metrics import APPOINTMENT_WRITES

log = get_logger(__name__)

Action = Literal["skip", "unchanged", "wait", "create", "patch", "delete", "leave"]
Outcome = Literal[
    "written", "deleted", "moved", "unchanged", "waiting", "failed", "retry", "reauth_required", "skipped"
]
CHANGED: frozenset[str] = frozenset({"written", "deleted", "moved"})
REAUTH_ERROR = "connection needs re-authorisation"


@dataclass
class Clients:
    """One provider client per connection for a batch, so its writes share one access token."""

    deps: Deps
    by_connection: dict[int, CalendarClient] = field(default_factory=dict)
    lanes: dict[int, asyncio.Semaphore] = field(default_factory=dict)

    def of(self, target: Target) -> CalendarClient:
        conn = target.connection
        if conn.id not in self.by_connection:
            self.by_connection[conn.id] = client_for(self.deps, conn, budget=budget_for(self.deps))
        return self.by_connection[conn.id]

    def lane(self, target: Target | None) -> contextlib.AbstractAsyncContextManager[object]:
        """A mailbox's in-flight cap (Graph allows a few), queued here rather than in the shared
        budget, so calls waiting for one busy mailbox do not hold the batch's concurrency."""
        if target is None or target.connection.provider != "outlook":
            return contextlib.nullcontext()
        conn_id = target.connection.id
        if conn_id not in self.lanes:
            self.lanes[conn_id] = asyncio.Semaphore(self.deps.settings.outlook.max_in_flight)
        return self.lanes[conn_id]


async def run_once(deps: Deps) -> dict[str, int]:
    """Write every due outbox entry once (a batch of `write.batch`); counts by outcome."""
    w = deps.settings.write
    async with deps.sessions.begin() as session:
        entries = await outbox.claim_due(
            session=session, owner=deps.worker_id, now=deps.clock.now(), lease_seconds=w.lease_seconds, limit=w.batch
        )
    outcomes = await write_batch(deps, entries) if entries else []
    return {"claimed": len(entries), **Counter(outcomes)}


async def write_appointment(deps: Deps, entry: Entry) -> Outcome:
    """Bring the provider in line with one leased entry's appointment and record it."""
    return (await write_batch(deps, [entry]))[0]


async def write_batch(deps: Deps, entries: Sequence[Entry]) -> list[Outcome]:
    """Read the plans, pin the creates, call the providers (`write.concurrency` at a time), record.

    The database work is a few set-based statements per batch; only provider calls are per entry.
    """
    started = time.monotonic()
    async with deps.sessions.begin() as session:
        plans = await appts.write_plans(session=session, appointment_ids=[e.appointment_id for e in entries])
    steps = [decide(entry, plans.get(entry.appointment_id)) for entry in entries]
    pins = [(step.plan.appointment.id, step.target.link.id) for step in steps if step.pin and step.plan and step.target]
    if pins:
        async with deps.sessions.begin() as session:
            await appts.pin(session=session, pins=pins)
    limit, clients = asyncio.Semaphore(deps.settings.write.concurrency), Clients(deps)

    async def bounded(step: Step) -> Result:
        async with clients.lane(step.target), limit:
            return await carry_out(step, clients)

    async with _LeaseKeeper(deps, [e.id for e in entries]):
        results = await asyncio.gather(*(bounded(step) for step in steps))
    await _record(deps, results)
    for r in results:
        APPOINTMENT_WRITES.labels(outcome=r.outcome).inc()
    await cache.purge(deps.redis, deps.prefix, {r.step.entry.resource_id for r in results if r.outcome in CHANGED})
    _log(results, started)
    return [r.outcome for r in results]


class _LeaseKeeper:
    """Extends the batch's leases while its provider calls run, so no other worker takes them.

    A batch of slow calls (provider retries) can outlast `write.lease_seconds`; a second worker
    writing an older version after a newer one could leave the provider behind.
    """

    def __init__(self, deps: Deps, entry_ids: list[int]) -> None:
        self._deps, self._ids = deps, entry_ids
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        self._task = asyncio.ensure_future(self._keep())

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _keep(self) -> None:
        seconds = self._deps.settings.write.lease_seconds
        while True:
            await asyncio.sleep(seconds / 3)
            until = self._deps.clock.now() + timedelta(seconds=seconds)
            try:
                async with self._deps.sessions.begin() as session:
                    await outbox.extend_leases(
                        session=session, owner=self._deps.worker_id, entry_ids=self._ids, until=until
                    )
            except Exception as exc:  # the next round tries again; the lease still has two thirds left
                log.warning("write.lease_extension_failed", error=type(exc).__name__)


# --- deciding (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """What one entry needs: an action, on which calendar, and whether to pin it first."""

    entry: Entry
    action: Action
    plan: WritePlan | None = None
    target: Target | None = None
    pin: bool = False
    reason: str | None = None


def decide(entry: Entry, plan: WritePlan | None) -> Step:
    """The next step for an appointment, from its stored state alone (no I/O)."""
    if plan is None:
        return Step(entry, "skip")  # the appointment is gone (its entry went with it)
    a, event = plan.appointment, _live(plan.event)
    if event is not None and plan.pinned is not None and plan.pinned.link.resource_id != a.resource_id:
        # Moved to another resource: remove it from the old calendar (if we still can) first.
        active = plan.pinned.connection.status == "active"
        return Step(entry, "leave", plan, plan.pinned if active else None)
    if event is None:
        if a.status == "cancelled":
            return Step(entry, "unchanged", plan)
        return _usable(Step(entry, "create", plan, plan.write, pin=True))
    if a.status == "cancelled":
        return _usable(Step(entry, "delete", plan, plan.pinned))
    if event.provider_event_id is None:
        return _usable(Step(entry, "create", plan, plan.pinned))  # a create whose answer was lost
    if event.written_version == a.version:
        return Step(entry, "unchanged", plan)
    return _usable(Step(entry, "patch", plan, plan.pinned))


def _usable(step: Step) -> Step:
    """The step, or a wait when its calendar is missing or its connection is not active."""
    if step.target is None:
        return Step(step.entry, "wait", step.plan, reason=outbox.WAITING_ERROR)
    if step.target.connection.status != "active":
        return Step(step.entry, "wait", step.plan, reason=REAUTH_ERROR)
    return step


def _live(event: AppointmentEvent | None) -> AppointmentEvent | None:
    """The event row if it stands for an event that exists (or may exist: pinned, no id yet)."""
    return event if event is not None and not event.deleted else None


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


# --- calling the provider ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    """How one step ended; `written` for creates and patches, `error` for failures."""

    step: Step
    outcome: Outcome
    written: WrittenEvent | None = None
    error: str | None = None


NO_CALL: dict[str, Outcome] = {"skip": "skipped", "unchanged": "unchanged", "wait": "waiting"}


async def carry_out(step: Step, clients: Clients) -> Result:
    """Run the step's provider calls; every failure becomes a Result (never raises)."""
    if step.action in NO_CALL:
        return Result(step, NO_CALL[step.action], error=step.reason)
    try:
        return await _call(step, clients)
    except ReauthRequiredError as exc:
        return Result(step, "reauth_required", error=_text(exc))
    except PermanentError as exc:
        return Result(step, "failed", error=_text(exc))
    except Exception as exc:  # retryable, or anything unexpected: back this entry off
        return Result(step, "retry", error=_text(exc))


async def _call(step: Step, clients: Clients) -> Result:
    assert step.plan is not None
    plan, target, body = step.plan, step.target, body_of(step.plan)
    if step.action == "leave":
        if target is not None and plan.event is not None:
            with contextlib.suppress(PermanentError):  # a calendar we may no longer touch keeps its copy
                await _discard(clients.of(target), target.link.calendar_id, plan.event, body)
        return Result(step, "moved")
    assert target is not None
    client, calendar_id = clients.of(target), target.link.calendar_id
    if step.action == "delete":
        assert plan.event is not None
        await _discard(client, calendar_id, plan.event, body)
        return Result(step, "deleted")
    if step.action == "patch":
        assert plan.event is not None and plan.event.provider_event_id is not None
        return Result(
            step, "written", await _patch_or_recreate(client, calendar_id, plan.event.provider_event_id, body)
        )
    written = await client.create_event(calendar_id, body)
    crashpoint("write.after_create_before_record")
    return Result(step, "written", written)


async def _patch_or_recreate(
    client: CalendarClient, calendar_id: str, event_id: str, body: AppointmentBody
) -> WrittenEvent:
    """Move the event; if someone deleted it, create it again (same idempotency key)."""
    try:
        written = await client.patch_event(calendar_id, event_id, body)
    except NotFoundError:
        return await client.create_event(calendar_id, body)
    return written


async def _discard(client: CalendarClient, calendar_id: str, event: AppointmentEvent, body: AppointmentBody) -> None:
    """Delete the event; a pinned create whose answer was lost is first made certain, then deleted."""
    event_id = event.provider_event_id
    if event_id is None:
        event_id = (await client.create_event(calendar_id, body)).id
    await client.delete_event(calendar_id, event_id)


def _text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


# --- recording the outcomes (one transaction per batch) -------------------------------------------


async def _record(deps: Deps, results: Sequence[Result]) -> None:
    """Store every outcome of a batch: events, completions, backoffs, waits, failures."""
    by: dict[str, list[Result]] = {}
    for r in results:
        by.setdefault(r.outcome, []).append(r)
    now, owner = deps.clock.now(), deps.worker_id
    async with deps.sessions.begin() as session:
        await appts.record_written(session=session, written=[_written(r) for r in by.get("written", [])])
        await appts.record_deleted(
            session=session, deleted=[(r.step.entry.appointment_id, _version(r)) for r in by.get("deleted", [])]
        )
        done = [r for key in ("written", "deleted", "unchanged") for r in by.get(key, [])]
        await outbox.complete(
            session=session, owner=owner, done=[(r.step.entry.id, _version(r)) for r in done], now=now
        )
        if moved := by.get("moved"):
            await appts.forget_events(session=session, appointment_ids=[r.step.entry.appointment_id for r in moved])
            await outbox.requeue(session=session, owner=owner, entry_ids=[r.step.entry.id for r in moved], now=now)
        await outbox.retry_later(session=session, owner=owner, retries=[_retry(deps, r) for r in by.get("retry", [])])
        waits = by.get("waiting", []) + by.get("reauth_required", [])
        await outbox.wait_for_calendar(
            session=session, owner=owner, waits=[(r.step.entry.id, _wait_reason(r)) for r in waits]
        )
        for r in by.get("reauth_required", []):
            await _reauth(session, r, now)
        for r in by.get("failed", []):
            await _give_up(session, deps, r, now)


def _version(result: Result) -> int:
    plan = result.step.plan
    return int(plan.appointment.version) if plan is not None else 0


def _written(result: Result) -> appts.Written:
    step, written = result.step, result.written
    assert step.plan is not None and step.target is not None and written is not None
    return appts.Written(step.plan.appointment.id, step.target.link.id, written.id, written.etag, _version(result))


def _retry(deps: Deps, result: Result) -> tuple[int, datetime, str]:
    """Full-jitter backoff, doubling with each attempt of this entry."""
    w, entry = deps.settings.write, result.step.entry
    delay = next_attempt(entry.attempts + 1, base=w.backoff_base_seconds, cap=w.backoff_cap_seconds)
    return entry.id, deps.clock.now() + timedelta(seconds=delay), result.error or "retry"


def _wait_reason(result: Result) -> str:
    return REAUTH_ERROR if result.outcome == "reauth_required" else result.error or outbox.WAITING_ERROR


async def _reauth(session: AsyncSession, result: Result, now: datetime) -> None:
    """The grant is dead: mark the connection; its entries wait until it is active again."""
    assert result.step.target is not None
    connection_id = result.step.target.connection.id
    await mark_reauth_required(session=session, connection_id=connection_id, reason=result.error or "", now=now)


async def _give_up(session: AsyncSession, deps: Deps, result: Result, now: datetime) -> None:
    """A permanent refusal: stop retrying, show why, tell the main API once."""
    assert result.step.plan is not None
    a, error = result.step.plan.appointment, result.error or "refused"
    await appts.unpin(session=session, appointment_ids=[a.id])  # the provider refused: nothing was created
    failed = await outbox.give_up(
        session=session, entry_id=result.step.entry.id, owner=deps.worker_id, error=error, version=a.version, now=now
    )
    company_id = await company_of_resource(session=session, resource_id=a.resource_id)
    if failed and company_id is not None:
        await enqueue_event(
            session=session,
            company_id=company_id,
            event_type="appointment.writeFailed",
            resource_id=a.resource_id,
            obj={"appointmentId": a.id, "version": a.version, "error": error},
            now=now,
        )


def _log(results: Sequence[Result], started: float) -> None:
    """One line per batch with counts; one warning per entry that did not succeed."""
    for r in results:
        if r.outcome in ("failed", "retry", "reauth_required"):
            log.warning(f"write.{r.outcome}", appointment_id=r.step.entry.appointment_id, error=r.error)
    counts: dict[str, int] = dict(Counter(r.outcome for r in results))
    log.info("write.batch", entries=len(results), duration_ms=round((time.monotonic() - started) * 1000, 1), **counts)


# --- the long-running sweep -------------------------------------------------------------------

SHIFT_SECONDS = sweeping.SHIFT_SECONDS


async def sweep(deps: Deps, *, seconds: float = SHIFT_SECONDS - 1) -> None:
    """Drain due writes whenever woken (a PUT's Redis signal) or every `write.sweep_seconds`."""
    await sweeping.sweep(
        deps,
        name="write",
        kind=wakeups.OUTBOX,
        batch=run_once,
        interval=deps.settings.write.sweep_seconds,
        seconds=seconds,
        busy=lambda counts: counts.get("claimed", 0) >= deps.settings.write.batch,
    )
