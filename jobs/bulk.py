"""createUnavailabilityBulk: list every read calendar of a resource over a date range and
reconcile unavailability inside that range only, recording progress in `sync_jobs`.

A bulk run holds each link's lease while it lists (so it never interleaves with that
link's sync) but never touches the cursor: incremental sync goes on where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from jobs.ingest import Ingest, Mapper, Tally, busy_policy, map_page, prefetched, sync_window
from jobs.sync import LeaseKeeper, client_for_sync, lease_link
from providers.base import Window
from providers.errors import ReauthRequiredError
from worker import cache
from worker.db import links, sync_jobs
from worker.db.connections import mark_reauth_required
from worker.db.links import Claim, SyncTarget
from worker.db.tables import CalendarLink
from worker.deps import Deps
from worker.logging import get_logger

log = get_logger(__name__)

CONCURRENCY = 4  # calendars of one resource listed at once (they usually share one account budget)


@dataclass(frozen=True, slots=True)
class BulkRange:
    """[start_date, end_date) as whole days of the resource's time zone."""

    start_date: date
    end_date: date

    def window(self, tz: ZoneInfo) -> Window:
        return Window(datetime.combine(self.start_date, time(), tz), datetime.combine(self.end_date, time(), tz))


def _entry(link: CalendarLink) -> dict[str, Any]:
    return {
        "externalCalendarId": link.connection_id,
        "linkId": link.id,
        "calendarId": link.calendar_id,
        "status": "pending",
        "events": 0,
        "added": 0,
        "updated": 0,
        "removed": 0,
        "error": None,
    }


async def start_bulk(
    deps: Deps, *, resource_id: str, start_date: date, end_date: date, connection_id: int | None = None
) -> str:
    """Record a bulk job over the resource's read calendars (of one connection, if named)."""
    job_id = str(uuid.uuid4())
    async with deps.sessions.begin() as session:
        read = await links.read_links(
            session=session, resource_id=resource_id, connection_id=connection_id, active_only=False
        )
        progress = {"calendars": [_entry(link) for link in read]}
        await sync_jobs.create_job(
            session=session,
            job_id=job_id,
            resource_id=resource_id,
            connection_id=connection_id,
            start_date=start_date,
            end_date=end_date,
            progress=progress,
        )
    return job_id


async def run_bulk(deps: Deps, job_id: str, resource_id: str) -> str:
    """Run a recorded bulk job to the end; returns its final status (never leaves it "running")."""
    try:
        return await _run(deps, job_id, resource_id)
    except Exception as exc:
        log.warning("bulk.failed", job_id=job_id, error=type(exc).__name__)
        async with deps.sessions.begin() as session:
            job = await sync_jobs.get_job(session=session, resource_id=resource_id, job_id=job_id)
            progress = job.progress if job else {}
            await sync_jobs.finish_job(
                session=session,
                job_id=job_id,
                status="failed",
                progress=progress,
                error=type(exc).__name__,
                now=deps.clock.now(),
            )
        return "failed"


async def _run(deps: Deps, job_id: str, resource_id: str) -> str:
    async with deps.sessions.begin() as session:
        job = await sync_jobs.get_job(session=session, resource_id=resource_id, job_id=job_id)
    if job is None:
        raise LookupError(f"no bulk job {job_id}")
    span = BulkRange(job.start_date, job.end_date)
    progress: dict[str, Any] = dict(job.progress)
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(entry: dict[str, Any]) -> None:
        async with limit:
            entry.update(await _bulk_link(deps, entry["linkId"], span))
        await _save(deps, job_id, progress)

    await asyncio.gather(*(one(e) for e in progress["calendars"]))
    failed = [e for e in progress["calendars"] if e["status"] == "failed"]
    status = "failed" if failed else "succeeded"
    error = "; ".join(f"{e['calendarId']}: {e['error']}" for e in failed)[:2000] or None
    async with deps.sessions.begin() as session:
        await sync_jobs.finish_job(
            session=session, job_id=job_id, status=status, progress=progress, error=error, now=deps.clock.now()
        )
    if any(e["added"] or e["updated"] or e["removed"] for e in progress["calendars"]):
        await cache.purge(deps.redis, deps.prefix, [resource_id])
    log.info("bulk.completed", job_id=job_id, status=status, calendars=len(progress["calendars"]))
    return status


async def _save(deps: Deps, job_id: str, progress: dict[str, Any]) -> None:
    async with deps.sessions.begin() as session:
        await sync_jobs.save_progress(session=session, job_id=job_id, progress=progress)


async def _bulk_link(deps: Deps, link_id: int, span: BulkRange) -> dict[str, Any]:
    """List one calendar over the range and reconcile its rows there; the entry's new fields."""
    claim = await lease_link(deps, link_id, wait=deps.settings.sync.lease_seconds)
    if claim is None:
        return {"status": "skipped", "error": "calendar is not connected (re-authorise it)"}
    try:
        tally = await _reconcile(deps, claim, span)
    except ReauthRequiredError as exc:
        await _reauth(deps, link_id, str(exc) or "invalid_grant")
        return {"status": "failed", "error": "reauth_required"}
    except Exception as exc:  # one calendar failing never stops the others
        log.warning("bulk.calendar_failed", link_id=link_id, error=type(exc).__name__)
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        async with deps.sessions.begin() as session:
            await links.release(session=session, link_id=link_id, owner=deps.worker_id, restore=claim)
    counts = {"events": tally.events, "added": tally.added, "updated": tally.updated, "removed": tally.removed}
    return {"status": "done", **counts}


async def _reconcile(deps: Deps, claim: Claim, span: BulkRange) -> Tally:
    target = claim.target
    tz = ZoneInfo(target.timezone)
    window = span.window(tz)
    mapper = Mapper(tz, _hull(window, sync_window(deps.clock.now(), deps.settings.sync)), _policy(target))
    client = client_for_sync(deps, target.connection, interactive=True)
    lease = LeaseKeeper(deps, claim.link_id)
    async with deps.sessions.begin() as session:
        resource_id, now = target.link.resource_id, deps.clock.now()
        appointments = target.has_appointments
        ingest = Ingest(session, resource_id, claim.link_id, now, full=True, range_=window, appointments=appointments)
        pages = prefetched(client.list_changes(target.link.calendar_id, None, window))
        async with contextlib.aclosing(pages):
            async for page in pages:
                await ingest.apply(map_page(page, mapper))
                await lease.keep()
        tally = await ingest.finish()
        await lease.fence(session)
    return tally


def _hull(a: Window, b: Window) -> Window:
    """Rows keep the extent a sync would give them: clip to the range and the sync window together."""
    return Window(min(a.start, b.start), max(a.end, b.end))


def _policy(target: SyncTarget) -> Any:
    return busy_policy(target.company_settings, target.resource_settings)


async def _reauth(deps: Deps, link_id: int, reason: str) -> None:
    async with deps.sessions.begin() as session:
        target = await links.sync_target(session=session, link_id=link_id)
        if target is not None:
            await mark_reauth_required(
                session=session, connection_id=target.connection.id, reason=reason, now=deps.clock.now()
            )


async def bulk(
    deps: Deps, *, resource_id: str, start_date: date, end_date: date, connection_id: int | None = None
) -> tuple[str, asyncio.Task[str]]:
    """Record and start a bulk job in the background; its id and task (the API waits a bounded time)."""
    job_id = await start_bulk(
        deps, resource_id=resource_id, start_date=start_date, end_date=end_date, connection_id=connection_id
    )
    task = deps.tasks.spawn(run_bulk(deps, job_id, resource_id), name=f"bulk.{job_id}")
    return job_id, task
