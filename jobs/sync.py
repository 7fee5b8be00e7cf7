"""The sync job: lease a link → page through its changes → map → rows + cursor in one transaction → purge.

`sync_link` syncs one link now; `run_once` syncs every due link once (what tests call);
`sweep` is the long-running loop that wakes on the Redis signal or every `sync.sweep_seconds`;
`sync_resource` is the just-in-time sync behind `syncExternal=true`, bounded by a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from jobs import sweeping
from jobs.backoff import next_attempt
from jobs.clients import provider_kit, tokens_for
from jobs.ingest import Ingest, Mapper, Tally, busy_policy, map_page, prefetched, sync_window
from providers.base import CalendarClient, Window
from providers.errors import CursorExpiredError, MalformedResponseError, ReauthRequiredError
from providers.google.client import GoogleCalendarClient
from providers.outlook.client import GraphCalendarClient
from worker import cache, metrics, wakeups
from worker.budget import budget_for
from worker.crashpoints import crashpoint
from worker.db import links, notifications
from worker.db.connections import mark_reauth_required
from worker.db.links import Cadence, Claim, SyncTarget
from worker.db.tables import CalendarLink, ExternalCalendar
from worker.deps import Deps
from worker.logging import get_logger

log = get_logger(__name__)

# The main API hears `externalCalendar.syncFailing` once a calendar failed this many syncs in a
# row (a single failure is usually a blip the backoff absorbs), and `recovered` when it syncs again.
FAILING_AFTER = 3

Status = Literal["synced", "failed", "reauth_required", "skipped", "lease_lost", "pending"]


class _SeriesChangedError(Exception):
    """Google's feed re-lists a changed series under new instance ids without tombstones
    for the old ones (a series moved or cut short): only a full listing is exact."""


class LeaseLostError(Exception):
    """Another worker took the link over (our lease expired); our work is rolled back."""


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What one sync of one link did."""

    link_id: int
    status: Status
    full: bool = False
    events: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    quarantined: int = 0
    error: str | None = None
    resource_id: str | None = None
    provider: str = "unknown"  # known once the link was read; a metrics label

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def client_for_sync(deps: Deps, connection: ExternalCalendar, *, interactive: bool) -> CalendarClient:
    """The connection's client inside the shared request budget (interactive work first)."""
    kit = provider_kit(deps, connection.provider, budget=budget_for(deps))
    tokens = tokens_for(deps, kit, connection)
    key = f"{connection.provider}:{connection.account_email or connection.id}"
    cls = GoogleCalendarClient if connection.provider == "google" else GraphCalendarClient
    return cls(kit.http, tokens, budget_key=key, interactive=interactive)


async def sync_link(deps: Deps, link_id: int, *, interactive: bool = False) -> SyncOutcome:
    """Sync one link now unless another worker holds it (then "skipped")."""
    claim = await lease_link(deps, link_id, wait=0)
    if claim is None:
        return SyncOutcome(link_id, "skipped")
    return await run_claim(deps, claim, interactive=interactive)


async def lease_link(deps: Deps, link_id: int, *, wait: float) -> Claim | None:
    """Lease one link (due or not), waiting up to `wait` seconds while another worker holds it.

    None when it stays held, or cannot be synced at all (connection not active, link gone).
    """
    give_up = time.monotonic() + wait
    while True:
        async with deps.sessions.begin() as session:
            claims = await links.claim_links(
                session=session,
                now=deps.clock.now(),
                owner=deps.worker_id,
                lease_seconds=deps.settings.sync.lease_seconds,
                link_ids=[link_id],
            )
        if claims or time.monotonic() >= give_up:
            return claims[0] if claims else None
        async with deps.sessions.begin() as session:
            link = await links.get_link(session=session, link_id=link_id)
        expires = link.lease_expires_at if link is not None else None
        if expires is None or expires <= deps.clock.now():
            return None  # nobody holds it: the connection is not active, or the link is gone
        await asyncio.sleep(0.05)


async def run_once(deps: Deps) -> dict[str, int]:
    """Sync every due link once: `sync.concurrency` workers each lease the next due link as
    soon as they finish one (no batch waits for its slowest link). Counts by outcome status."""
    done: set[int] = set()
    outcomes: list[SyncOutcome] = []

    async def worker() -> None:
        while claim := await _next_due(deps, done):
            done.add(claim.link_id)
            outcomes.append(await run_claim(deps, claim))

    await asyncio.gather(*(worker() for _ in range(deps.settings.sync.concurrency)))
    counts = {"claimed": len(outcomes), "changed": sum(o.changed for o in outcomes)}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


async def _next_due(deps: Deps, done: set[int]) -> Claim | None:
    s = deps.settings.sync
    async with deps.sessions.begin() as session:
        claims = await links.claim_due(
            session=session,
            now=deps.clock.now(),
            owner=deps.worker_id,
            lease_seconds=s.lease_seconds,
            limit=1,
            cadence=Cadence(s.poll_seconds, s.reconcile_seconds, s.sweep_seconds),
            skip=done,
        )
    return claims[0] if claims else None


async def run_claim(deps: Deps, claim: Claim, *, interactive: bool = False) -> SyncOutcome:
    """Sync a leased link and record the outcome (success, backoff, reauth); never raises."""
    started = time.monotonic()
    try:
        outcome = await _sync(deps, claim, interactive=interactive or claim.interactive)
    except ReauthRequiredError as exc:
        outcome = await _reauth(deps, claim, exc)
    except LeaseLostError:
        outcome = SyncOutcome(claim.link_id, "lease_lost", error="lease lost")
    except Exception as exc:  # any failure of one link backs that link off; others go on
        outcome = await _failed(deps, claim, exc)
    if outcome.changed and outcome.resource_id is not None:
        await cache.purge(deps.redis, deps.prefix, [outcome.resource_id])
    _count(outcome, time.monotonic() - started)
    log.info(
        "sync.completed" if outcome.status == "synced" else f"sync.{outcome.status}",
        link_id=claim.link_id,
        full=outcome.full,
        events=outcome.events,
        added=outcome.added,
        updated=outcome.updated,
        removed=outcome.removed,
        quarantined=outcome.quarantined,
        error=outcome.error,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )
    return outcome


def _count(outcome: SyncOutcome, seconds: float) -> None:
    metrics.SYNCS.labels(outcome.provider, outcome.status).inc()
    metrics.SYNC_DURATION.labels(outcome.provider).observe(seconds)
    for change, n in (("added", outcome.added), ("updated", outcome.updated), ("removed", outcome.removed)):
        if n:
            metrics.EVENTS_INGESTED.labels(outcome.provider, change).inc(n)
    if outcome.quarantined:
        metrics.EVENTS_INGESTED.labels(outcome.provider, "quarantined").inc(outcome.quarantined)


async def _sync(deps: Deps, claim: Claim, *, interactive: bool) -> SyncOutcome:
    target = claim.target
    now = deps.clock.now()
    window = sync_window(now, deps.settings.sync)
    cursor = target.link.sync_cursor
    if claim.full or (target.link.window_start, target.link.window_end) != (window.start, window.end):
        cursor = None  # a requested full sync, or the window rolled forward: a new baseline
    client = client_for_sync(deps, target.connection, interactive=interactive)
    try:
        tally = await _pull(deps, target, client, cursor, window)
    except CursorExpiredError:
        async with deps.sessions.begin() as session:
            await links.drop_cursor(session=session, link_id=claim.link_id, owner=deps.worker_id)
        cursor = None
        tally = await _pull(deps, target, client, None, window)
    except _SeriesChangedError:
        cursor = None
        tally = await _pull(deps, target, client, None, window)
    return SyncOutcome(
        claim.link_id,
        "synced",
        cursor is None,
        tally.events,
        tally.added,
        tally.updated,
        tally.removed,
        tally.quarantined,
        resource_id=target.link.resource_id,
        provider=target.connection.provider,
    )


async def _pull(deps: Deps, target: SyncTarget, client: CalendarClient, cursor: str | None, window: Window) -> Tally:
    """One listing (full when `cursor` is None) applied page by page; commits with the new cursor."""
    link = target.link
    mapper = Mapper(ZoneInfo(target.timezone), window, busy_policy(target.company_settings, target.resource_settings))
    lease = LeaseKeeper(deps, link.id)
    new_cursor: str | None = None
    async with deps.sessions.begin() as session:
        full = cursor is None
        ingest = Ingest(
            session,
            link.resource_id,
            link.id,
            deps.clock.now(),
            full=full,
            fresh=full and not target.has_rows,
            held_before=target.has_quarantined,
            appointments=target.has_appointments,
        )
        pages = prefetched(client.list_changes(link.calendar_id, cursor, window))
        async with contextlib.aclosing(pages):
            async for page in pages:
                crashpoint("sync.after_page_fetched")
                await ingest.apply(map_page(page, mapper))
                new_cursor = page.next_cursor or new_cursor
                await lease.keep()
        tally = await ingest.finish()
        if cursor is not None and tally.series and target.connection.provider == "google":
            raise _SeriesChangedError  # rolls this incremental pass back
        if new_cursor is None:
            raise MalformedResponseError("the listing ended without a cursor")
        saved = await links.complete_sync(
            session=session,
            link_id=link.id,
            owner=deps.worker_id,
            cursor=new_cursor,
            window=(window.start, window.end),
            now=deps.clock.now(),
        )
        if not saved:
            raise LeaseLostError
        if link.consecutive_failures >= FAILING_AFTER:
            await _notify(deps, session, link, "externalCalendar.recovered", {})
        crashpoint("sync.after_rows_before_cursor")
    return tally


class LeaseKeeper:
    """Extends a long sync's lease (in its own transaction) before it can expire."""

    def __init__(self, deps: Deps, link_id: int) -> None:
        self._deps = deps
        self._link_id = link_id
        self._every = deps.settings.sync.lease_seconds / 3
        self._last = time.monotonic()

    async def fence(self, session: AsyncSession) -> None:
        """Inside the writing transaction: raise LeaseLostError unless the lease is still ours."""
        deps = self._deps
        until = deps.clock.now() + timedelta(seconds=deps.settings.sync.lease_seconds)
        if not await links.extend_lease(session=session, link_id=self._link_id, owner=deps.worker_id, until=until):
            raise LeaseLostError

    async def keep(self) -> None:
        if time.monotonic() - self._last < self._every:
            return
        self._last = time.monotonic()
        deps = self._deps
        until = deps.clock.now() + timedelta(seconds=deps.settings.sync.lease_seconds)
        async with deps.sessions.begin() as session:
            if not await links.extend_lease(session=session, link_id=self._link_id, owner=deps.worker_id, until=until):
                raise LeaseLostError


async def _reauth(deps: Deps, claim: Claim, exc: ReauthRequiredError) -> SyncOutcome:
    """The grant is dead: mark the connection (its links stop being polled) and let go."""
    reason = str(exc) or "invalid_grant"
    async with deps.sessions.begin() as session:
        target = await links.sync_target(session=session, link_id=claim.link_id)
        if target is not None:
            await mark_reauth_required(
                session=session, connection_id=target.connection.id, reason=reason, now=deps.clock.now()
            )
        await links.release(session=session, link_id=claim.link_id, owner=deps.worker_id, error=reason)
    return SyncOutcome(claim.link_id, "reauth_required", error=reason)


async def _failed(deps: Deps, claim: Claim, exc: Exception) -> SyncOutcome:
    """Back the link off (full jitter) and keep its request for the retry."""
    error = f"{type(exc).__name__}: {exc}"[:500]
    s = deps.settings.sync
    async with deps.sessions.begin() as session:
        link = await links.get_link(session=session, link_id=claim.link_id)
        failures = (link.consecutive_failures if link else 0) + 1
        delay = next_attempt(failures, base=s.backoff_base_seconds, cap=s.backoff_cap_seconds)
        retry_at = deps.clock.now() + timedelta(seconds=delay)
        await links.fail_sync(session=session, claim=claim, owner=deps.worker_id, error=error, next_attempt_at=retry_at)
        if link is not None and failures == FAILING_AFTER:
            obj = {"consecutiveFailures": failures, "lastError": error}
            await _notify(deps, session, link, "externalCalendar.syncFailing", obj)
    return SyncOutcome(claim.link_id, "failed", error=error)


async def _notify(deps: Deps, session: AsyncSession, link: CalendarLink, event_type: str, obj: dict[str, Any]) -> None:
    """Tell the main API about a calendar's sync health (in the caller's transaction)."""
    company_id = await notifications.company_of_resource(session=session, resource_id=link.resource_id)
    if company_id is None:
        return
    await notifications.enqueue_event(
        session=session,
        company_id=company_id,
        event_type=event_type,
        resource_id=link.resource_id,
        obj={"externalCalendarId": link.connection_id, "calendarId": link.calendar_id, **obj},
        now=deps.clock.now(),
    )


# --- the long-running sweep -------------------------------------------------------------

SHIFT_SECONDS = sweeping.SHIFT_SECONDS


async def sweep(deps: Deps, *, seconds: float = SHIFT_SECONDS - 1) -> None:
    """Run due syncs whenever woken (a trigger's Redis signal) or every `sync.sweep_seconds`."""
    await sweeping.sweep(
        deps,
        name="sync",
        kind=wakeups.SYNC,
        batch=run_once,
        interval=deps.settings.sync.sweep_seconds,
        seconds=seconds,
        # A long drain: look again at once for what arrived meanwhile.
        busy=lambda counts: counts.get("claimed", 0) > deps.settings.sync.concurrency,
    )


# --- just-in-time sync --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkResult:
    """How a link fared in a just-in-time sync: its outcome, or "pending" past the deadline."""

    link_id: int
    status: Status
    changed: bool = False
    error: str | None = None


async def sync_resource(deps: Deps, resource_id: str, *, deadline: float, interactive: bool = True) -> list[LinkResult]:
    """Sync every read link of a resource now, waiting at most `deadline` seconds.

    A link another worker is syncing is waited for (its lease released); syncs that outlive
    the deadline go on in the background and report "pending". Never raises for a link.
    """
    async with deps.sessions.begin() as session:
        ids = [link.id for link in await links.read_links(session=session, resource_id=resource_id)]
        if ids:
            await links.request_sync(session=session, now=deps.clock.now(), link_ids=ids, interactive=interactive)
    tasks = {i: deps.tasks.spawn(_sync_or_wait(deps, i, interactive), name=f"sync.jit.{i}") for i in ids}
    if tasks:
        await asyncio.wait(tasks.values(), timeout=max(0.0, deadline))
    return [_result(i, task) for i, task in tasks.items()]


async def _sync_or_wait(deps: Deps, link_id: int, interactive: bool) -> SyncOutcome:
    """Sync the link; if another worker holds it, wait for that sync and then sync again."""
    claim = await lease_link(deps, link_id, wait=deps.settings.sync.lease_seconds)
    if claim is None:
        return SyncOutcome(link_id, "skipped")
    return await run_claim(deps, claim, interactive=interactive)


def _result(link_id: int, task: asyncio.Task[SyncOutcome]) -> LinkResult:
    if not task.done():
        return LinkResult(link_id, "pending")
    if task.cancelled() or task.exception() is not None:
        return LinkResult(link_id, "failed", error="sync task failed")
    outcome = task.result()
    return LinkResult(link_id, outcome.status, outcome.changed, outcome.error)
