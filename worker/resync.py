"""`calsync sync RESOURCE [--start --end]`: force a sync of a resource's read calendars.

Without a range the CLI does no provider I/O: it records an interactive request in
PostgreSQL (as every trigger does) and a running daemon performs it; the wait is bounded.
With a range it runs the createUnavailabilityBulk job itself (jobs.bulk), which needs the
provider credentials in its settings, and draws the job's progress as it goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import aiohttp
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from worker.clock import SystemClock
from worker.config import Settings
from worker.crypto import TokenCipher
from worker.db import sync_jobs
from worker.db.engine import make_engine, make_sessions
from worker.db.links import read_links, request_sync
from worker.db.tables import CalendarLink
from worker.deps import Deps

POLL_SECONDS = 0.5  # how often the CLI re-reads the links while it waits
BAR_WIDTH = 30


@dataclass(frozen=True, slots=True)
class Mark:
    """What a link looked like before the request: a sync or a failure after it moves these."""

    last_synced_at: datetime | None
    failures: int


def progress_bar(done: int, total: int, *, width: int = BAR_WIDTH) -> str:
    """A text progress bar: '[#######-------] 3/7'."""
    filled = width * done // total if total else width
    return f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total}"


def moved(link: CalendarLink, mark: Mark) -> str | None:
    """'synced' or 'failed' once the link has moved past its mark, else None."""
    if link.last_synced_at is not None and (mark.last_synced_at is None or link.last_synced_at > mark.last_synced_at):
        return "synced"
    if link.consecutive_failures > mark.failures:
        return "failed"
    return None


async def request(sessions: async_sessionmaker[AsyncSession], resource_id: str) -> dict[int, Mark]:
    """Record the interactive request; the marks of the resource's active read links."""
    async with sessions.begin() as session:
        links = await read_links(session=session, resource_id=resource_id)
        marks = {link.id: Mark(link.last_synced_at, link.consecutive_failures) for link in links}
        if marks:
            await request_sync(session=session, now=datetime.now(UTC), link_ids=list(marks), interactive=True)
    return marks


async def wait(
    sessions: async_sessionmaker[AsyncSession],
    resource_id: str,
    marks: dict[int, Mark],
    *,
    wait_seconds: float,
    report: Callable[[str], None],
) -> dict[int, str]:
    """Poll until every link has synced or failed, or `wait_seconds` pass; each finished link's outcome."""
    deadline = time.monotonic() + wait_seconds
    outcomes: dict[int, str] = {}
    while len(outcomes) < len(marks) and time.monotonic() < deadline:
        async with sessions.begin() as session:
            links = await read_links(session=session, resource_id=resource_id, active_only=False)
        for link in links:
            outcome = moved(link, marks[link.id]) if link.id in marks and link.id not in outcomes else None
            if outcome:
                outcomes[link.id] = outcome
                report(_line(link, outcome, len(outcomes), len(marks)))
        if len(outcomes) < len(marks):
            await asyncio.sleep(POLL_SECONDS)
    return outcomes


def _line(link: CalendarLink, outcome: str, done: int, total: int) -> str:
    detail = f": {link.last_error}" if outcome == "failed" and link.last_error else ""
    return f"{progress_bar(done, total)}  #{link.id} {link.name or link.calendar_id} {outcome}{detail}"


@contextlib.asynccontextmanager
async def cli_deps(settings: Settings) -> AsyncIterator[Deps]:
    """Deps for a one-off command (database and Redis URLs already resolved in settings)."""
    engine = make_engine(settings.database.url, pool_size=2)
    redis = Redis.from_url(settings.redis.url, decode_responses=True, socket_timeout=5)
    timeout = aiohttp.ClientTimeout(total=settings.http.timeout_seconds)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            deps = Deps(
                settings=settings,
                engine=engine,
                sessions=make_sessions(engine),
                redis=redis,
                http=http,
                clock=SystemClock(),
                cipher=TokenCipher(settings.crypto.keys),
                worker_id=f"cli:{socket.gethostname()}",
            )
            yield deps
            await deps.tasks.drain(settings.server.shutdown_grace_seconds)
    finally:
        await redis.aclose()
        await engine.dispose()


async def bulk(deps: Deps, resource_id: str, start: date, end: date, *, report: Callable[[str], None]) -> str:
    """Run createUnavailabilityBulk over [start, end), reporting calendars done; the job's final status."""
    from jobs import bulk as bulk_job  # the CLI's only provider I/O; imported where it is used

    async with deps.sessions.begin() as session:
        if not await read_links(session=session, resource_id=resource_id, active_only=False):
            report(f"resource {resource_id} has no read calendars")
            return "failed"
    job_id = await bulk_job.start_bulk(deps, resource_id=resource_id, start_date=start, end_date=end)
    task = asyncio.create_task(bulk_job.run_bulk(deps, job_id, resource_id))
    shown = ""
    while True:
        finished = task.done()
        calendars = await _job_calendars(deps, resource_id, job_id)
        line = progress_bar(sum(c["status"] != "pending" for c in calendars), len(calendars))
        if line != shown:
            report(line)
            shown = line
        if finished:
            break
        await asyncio.wait({task}, timeout=POLL_SECONDS)
    for c in calendars:
        counts = f"{c['events']} events, +{c['added']} ~{c['updated']} -{c['removed']}"
        report(
            f"  #{c['linkId']} {c['calendarId']}: {c['status']}, {counts}" + (f" ({c['error']})" if c["error"] else "")
        )
    return task.result()


async def _job_calendars(deps: Deps, resource_id: str, job_id: str) -> list[dict[str, Any]]:
    async with deps.sessions.begin() as session:
        job = await sync_jobs.get_job(session=session, resource_id=resource_id, job_id=job_id)
    return list(job.progress.get("calendars", [])) if job else []
