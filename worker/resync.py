"""`calsync sync RESOURCE`: record an interactive sync request and watch the links catch up.

The CLI does no provider I/O: it records the request in PostgreSQL (as every trigger does)
and a running daemon performs it. The wait is bounded; a timeout says what to check.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from worker.db.links import read_links, request_sync
from worker.db.tables import CalendarLink

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
    async with sessions() as session, session.begin():
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
        async with sessions() as session:
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
