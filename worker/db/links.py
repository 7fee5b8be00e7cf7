"""Calendar links: sync requests, leases, cursors, status and backoff."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import case, update
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.tables import CalendarLink


async def request_sync(
    *,
    session: AsyncSession,
    now: datetime,
    link_ids: Sequence[int] | None = None,
    resource_id: str | None = None,
    interactive: bool = False,
    full: bool = False,
) -> int:
    """Record a durable sync request on links (by id or by resource); returns how many.

    The earliest pending request time is kept, so a storm of requests is one request. A link
    in backoff keeps its next attempt unless a person is waiting (interactive).
    """
    if link_ids is None and resource_id is None:
        raise ValueError("name the links or the resource")
    stmt = update(CalendarLink).where(CalendarLink.read)
    if link_ids is not None:
        stmt = stmt.where(CalendarLink.id.in_(list(link_ids)))
    if resource_id is not None:
        stmt = stmt.where(CalendarLink.resource_id == resource_id)
    values: dict[str, object] = {
        "sync_requested_at": case((CalendarLink.sync_requested_at.is_(None), now), else_=CalendarLink.sync_requested_at)
    }
    if interactive:
        values |= {"sync_interactive": True, "next_attempt_at": now}
    if full:
        values["full_sync_requested"] = True
    result = await session.execute(stmt.values(**values))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
