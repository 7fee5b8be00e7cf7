"""Which provider calendars a connection uses: its links, and the read/write selection.

One write calendar per resource: a new write choice first clears the old one's flag in the
same transaction; the partial unique index `uq_calendar_links_one_write` refuses two.
Calendars dropped from the selection (or no longer read) lose their busy rows at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete, exists, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.tables import CalendarLink, Unavailability


@dataclass(frozen=True, slots=True)
class Choice:
    """One calendar as the selection wants it."""

    calendar_id: str
    name: str
    primary: bool
    read: bool
    write: bool


@dataclass(frozen=True, slots=True)
class Applied:
    """What a selection changed: links that must sync now, and whether busy rows went away."""

    new_read_link_ids: list[int]
    busy_rows_removed: bool
    removed_links: list[CalendarLink] = field(default_factory=list)  # their push must be stopped


async def links_of(*, session: AsyncSession, connection_id: int) -> list[CalendarLink]:
    """The connection's links, oldest first."""
    stmt = select(CalendarLink).where(CalendarLink.connection_id == connection_id).order_by(CalendarLink.id)
    return list((await session.execute(stmt)).scalars())


async def links_of_resource(*, session: AsyncSession, resource_id: str) -> list[CalendarLink]:
    """Every link of every connection of a resource, oldest first."""
    stmt = select(CalendarLink).where(CalendarLink.resource_id == resource_id).order_by(CalendarLink.id)
    return list((await session.execute(stmt)).scalars())


async def add_primary_link(
    *, session: AsyncSession, connection_id: int, resource_id: str, choice: Choice, take_write: bool
) -> int:
    """Link a newly connected account's primary calendar; returns the link id.

    `take_write` moves the resource's write flag here (Outlook); otherwise the link writes
    only if the resource has no write calendar yet (Google).
    """
    if take_write:
        await _clear_write(session, resource_id, keep=None)
        write: object = True
    else:
        write = ~exists().where(CalendarLink.resource_id == resource_id, CalendarLink.write)
    stmt = (
        insert(CalendarLink)
        .values(
            connection_id=connection_id,
            resource_id=resource_id,
            calendar_id=choice.calendar_id,
            name=choice.name,
            primary=choice.primary,
            read=True,
            write=write,
        )
        .on_conflict_do_update(constraint="uq_calendar_links_connection_calendar", set_={"read": True})
        .returning(CalendarLink.id)
    )
    return int((await session.execute(stmt)).scalar_one())


async def drop_links(*, session: AsyncSession, connection_id: int) -> int:
    """Forget every link of a connection (another account was connected in its place)."""
    result = await session.execute(delete(CalendarLink).where(CalendarLink.connection_id == connection_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def apply_selection(
    *, session: AsyncSession, connection_id: int, resource_id: str, choices: Sequence[Choice]
) -> Applied:
    """Make the connection's links exactly `choices` (one transaction, the caller's)."""
    before = {link.calendar_id: link.read for link in await links_of(session=session, connection_id=connection_id)}
    wanted = {c.calendar_id for c in choices}
    write_id = next((c.calendar_id for c in choices if c.write), None)
    if write_id is not None:
        await _clear_write(session, resource_id, keep=(connection_id, write_id))
    removed = await session.execute(
        delete(CalendarLink)
        .where(CalendarLink.connection_id == connection_id, CalendarLink.calendar_id.not_in(wanted))
        .returning(CalendarLink)
    )
    removed_links = list(removed.scalars())
    gone = bool(removed_links)
    no_longer_read = [c.calendar_id for c in choices if not c.read and before.get(c.calendar_id)]
    if no_longer_read:
        gone = await _stop_reading(session, connection_id, no_longer_read) or gone
    ids = await _upsert(session, connection_id, resource_id, choices)
    fresh = [ids[c.calendar_id] for c in choices if c.read and not before.get(c.calendar_id)]
    return Applied(new_read_link_ids=fresh, busy_rows_removed=gone, removed_links=removed_links)


async def _clear_write(session: AsyncSession, resource_id: str, *, keep: tuple[int, str] | None) -> None:
    stmt = update(CalendarLink).where(CalendarLink.resource_id == resource_id, CalendarLink.write)
    if keep is not None:
        stmt = stmt.where(~((CalendarLink.connection_id == keep[0]) & (CalendarLink.calendar_id == keep[1])))
    await session.execute(stmt.values(write=False))


async def _stop_reading(session: AsyncSession, connection_id: int, calendar_ids: list[str]) -> bool:
    """Delete the busy rows of calendars that stay linked but are no longer read."""
    link_ids = select(CalendarLink.id).where(
        CalendarLink.connection_id == connection_id, CalendarLink.calendar_id.in_(calendar_ids)
    )
    result = await session.execute(delete(Unavailability).where(Unavailability.link_id.in_(link_ids)))
    # A later read starts from a full sync, not from a cursor that skipped the gap.
    await session.execute(
        update(CalendarLink)
        .where(CalendarLink.id.in_(link_ids))
        .values(sync_cursor=None, window_start=None, window_end=None, sync_requested_at=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def _upsert(
    session: AsyncSession, connection_id: int, resource_id: str, choices: Sequence[Choice]
) -> dict[str, int]:
    if not choices:
        return {}
    rows = [
        {
            "connection_id": connection_id,
            "resource_id": resource_id,
            "calendar_id": c.calendar_id,
            "name": c.name,
            "primary": c.primary,
            "read": c.read,
            "write": c.write,
        }
        for c in choices
    ]
    base = insert(CalendarLink).values(rows)
    stmt = base.on_conflict_do_update(
        constraint="uq_calendar_links_connection_calendar",
        set_={
            "name": base.excluded.name,
            "primary": base.excluded.primary,
            "read": base.excluded.read,
            "write": base.excluded.write,
        },
    ).returning(CalendarLink.calendar_id, CalendarLink.id)
    return {row[0]: int(row[1]) for row in (await session.execute(stmt)).all()}
