"""Calendar links: sync requests, leases (SKIP LOCKED), cursors, status and backoff.

Coordination contract: a claim (`claim_due`, `claim_links`) takes a lease and *moves* the
pending request into the claim (clearing `sync_requested_at`), so a request recorded while
the sync runs is left on the row and causes exactly one more sync after it. A lease whose
owner died expires and the link is due again at once (`lease_owner` still set).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, case, column, exists, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from worker.db.tables import (
    TZ,
    Appointment,
    CalendarLink,
    Company,
    ExternalCalendar,
    QuarantinedEvent,
    Resource,
    Unavailability,
)


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


@dataclass(frozen=True, slots=True)
class Claim:
    """A leased link and the request the sync serves (restored if the sync fails), with what
    the sync reads first, returned by the claiming statement itself (one round trip per sync)."""

    link_id: int
    requested_at: datetime | None
    interactive: bool
    full: bool
    target: SyncTarget


@dataclass(frozen=True, slots=True)
class Cadence:
    """How often links are polled: without healthy push, and with it (reconciliation); and the
    least time between two requested background syncs of one link."""

    poll_seconds: float
    reconcile_seconds: float
    gap_seconds: float = 0.0


# Leases up to :limit links chosen by {which} whose lease is free (never held, or abandoned by
# a dead worker), most urgent first, skipping rows another worker is claiming right now;
# returns each claimed row as updated, with the request the claim took from it.
_CLAIM = """
WITH due AS (
    SELECT l.id, l.sync_requested_at, l.sync_interactive, l.full_sync_requested
    FROM calendar_links l JOIN external_calendars c ON c.id = l.connection_id
    WHERE l.read AND c.status = 'active' AND (l.lease_expires_at IS NULL OR l.lease_expires_at <= :now)
      AND {which}
    ORDER BY l.sync_interactive DESC, l.sync_requested_at NULLS LAST, l.last_synced_at NULLS FIRST, l.id
    LIMIT :limit
    FOR UPDATE OF l SKIP LOCKED
)
UPDATE calendar_links l
SET lease_owner = :owner, lease_expires_at = :expires, sync_requested_at = NULL,
    sync_interactive = false, full_sync_requested = false
FROM due WHERE l.id = due.id
RETURNING l.*, due.sync_requested_at AS claimed_requested_at, due.sync_interactive AS claimed_interactive,
          due.full_sync_requested AS claimed_full
"""
# Due: not synced in this sweep yet, out of backoff, and abandoned by a dead worker, never
# synced, requested (but at most once per `gap` unless a person waits: a push storm
# coalesces), or its poll interval elapsed. The poll interval is shortened by up to 10% per
# link (by id) so links spread out; float8, not numeric, arithmetic (a third of the scan).
_DUE = """NOT (l.id = ANY(CAST(:skip AS bigint[])))
      AND (l.next_attempt_at IS NULL OR l.next_attempt_at <= :now)
      AND (l.lease_owner IS NOT NULL OR l.last_synced_at IS NULL
           OR (l.sync_requested_at IS NOT NULL
               AND (l.sync_interactive OR l.last_synced_at <= :now - make_interval(secs => :gap)))
           OR l.last_synced_at <= :now - make_interval(secs => (0.9 + (l.id % 101) / 1010.0::float8) *
              CASE WHEN l.push_expires_at > :now AND l.push_error IS NULL THEN :reconcile ELSE :poll END))"""
_CLAIM_DUE_SQL = _CLAIM.format(which=_DUE)
# Named links, due or not: by primary key, a statement of its own so its plan uses the index.
_CLAIM_LINKS_SQL = _CLAIM.format(which="l.id = ANY(CAST(:ids AS bigint[]))")


async def claim_due(
    *,
    session: AsyncSession,
    now: datetime,
    owner: str,
    lease_seconds: float,
    limit: int,
    cadence: Cadence,
    skip: Collection[int] = (),
) -> list[Claim]:
    """Lease up to `limit` due links, never those in `skip` (those a sweep has already synced)."""
    params = {
        "skip": list(skip),
        "reconcile": cadence.reconcile_seconds,
        "poll": cadence.poll_seconds,
        "gap": cadence.gap_seconds,
    }
    return await _claim(session, _CLAIM_DUE, params, now=now, owner=owner, lease_seconds=lease_seconds, limit=limit)


async def claim_links(
    *, session: AsyncSession, now: datetime, owner: str, lease_seconds: float, link_ids: Sequence[int]
) -> list[Claim]:
    """Lease exactly these links, due or not, unless another worker holds them."""
    params = {"ids": list(link_ids)}
    limit = len(link_ids)
    return await _claim(session, _CLAIM_LINKS, params, now=now, owner=owner, lease_seconds=lease_seconds, limit=limit)


async def _claim(
    session: AsyncSession,
    stmt: Select[Any],
    params: dict[str, Any],
    *,
    now: datetime,
    owner: str,
    lease_seconds: float,
    limit: int,
) -> list[Claim]:
    params |= {"now": now, "owner": owner, "expires": now + timedelta(seconds=lease_seconds), "limit": limit}
    claims = []
    for *target, requested_at, interactive, full in (await session.execute(stmt, params)).all():
        sync = _sync_target(target)
        claims.append(Claim(sync.link.id, requested_at, bool(interactive), bool(full), sync))
    return claims


async def extend_lease(*, session: AsyncSession, link_id: int, owner: str, until: datetime) -> bool:
    """Push our lease's expiry out; False if the lease is no longer ours."""
    stmt = (
        update(CalendarLink)
        .where(CalendarLink.id == link_id, CalendarLink.lease_owner == owner)
        .values(lease_expires_at=until)
    )
    return bool((await session.execute(stmt)).rowcount)  # type: ignore[attr-defined]


# Once per sync: a constant statement costs half the CPU of building an ORM update each time.
_COMPLETE = text(
    """
UPDATE calendar_links
SET last_synced_at = :now, updated_at = now(), consecutive_failures = 0, last_error = NULL, next_attempt_at = NULL,
    lease_owner = NULL, lease_expires_at = NULL, sync_cursor = COALESCE(:cursor, sync_cursor),
    window_start = COALESCE(:window_start, window_start), window_end = COALESCE(:window_end, window_end)
WHERE id = :link_id AND lease_owner = :owner
"""
)


async def complete_sync(
    *,
    session: AsyncSession,
    link_id: int,
    owner: str,
    cursor: str | None,
    window: tuple[datetime, datetime] | None,
    now: datetime,
) -> bool:
    """Store the new cursor and window (each kept when None), clear failures and release the
    lease (fenced by owner)."""
    start, end = window or (None, None)
    params = {"now": now, "cursor": cursor, "window_start": start, "window_end": end}
    result = await session.execute(_COMPLETE, params | {"link_id": link_id, "owner": owner})
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def drop_cursor(*, session: AsyncSession, link_id: int, owner: str) -> None:
    """Forget a cursor the provider no longer accepts (the next sync is a full one)."""
    stmt = (
        update(CalendarLink)
        .where(CalendarLink.id == link_id, CalendarLink.lease_owner == owner)
        .values(sync_cursor=None, window_start=None, window_end=None)
    )
    await session.execute(stmt)


async def fail_sync(
    *, session: AsyncSession, claim: Claim, owner: str, error: str, next_attempt_at: datetime | None
) -> None:
    """Count a failure, schedule the retry, keep the request that was being served, release."""
    link = CalendarLink
    stmt = (
        update(link)
        .where(link.id == claim.link_id, link.lease_owner == owner)
        .values(
            consecutive_failures=link.consecutive_failures + 1,
            last_error=error[:2000],
            next_attempt_at=next_attempt_at,
            lease_owner=None,
            lease_expires_at=None,
            sync_requested_at=_coalesce_time(link.sync_requested_at, claim.requested_at),
            sync_interactive=link.sync_interactive | claim.interactive,
            full_sync_requested=link.full_sync_requested | claim.full,
        )
    )
    await session.execute(stmt)


async def release(
    *, session: AsyncSession, link_id: int, owner: str, error: str | None = None, restore: Claim | None = None
) -> None:
    """Give the lease back without counting a failure (reauth, link gone, bulk runs).

    `restore` puts back the request the claim took, for holders that did not sync (bulk).
    """
    values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
    if error is not None:
        values["last_error"] = error[:2000]
    if restore is not None:
        link = CalendarLink
        values |= {
            "sync_requested_at": _coalesce_time(link.sync_requested_at, restore.requested_at),
            "sync_interactive": link.sync_interactive | restore.interactive,
            "full_sync_requested": link.full_sync_requested | restore.full,
        }
    stmt = update(CalendarLink).where(CalendarLink.id == link_id, CalendarLink.lease_owner == owner).values(**values)
    await session.execute(stmt)


def _coalesce_time(column: Any, value: datetime | None) -> Any:
    return column if value is None else case((column.is_(None), value), else_=column)


@dataclass(frozen=True, slots=True)
class SyncTarget:
    """Everything a sync of one link reads before talking to the provider."""

    link: CalendarLink
    connection: ExternalCalendar
    timezone: str
    company_settings: dict[str, Any]
    resource_settings: dict[str, Any]
    has_rows: bool  # the link has unavailability rows (a first full sync can plainly insert)
    has_quarantined: bool  # the link has quarantined events
    has_appointments: bool  # the resource has confirmed appointments (busy rows may conflict)


def _select_target(link: Any, *extra: Any) -> Select[Any]:
    """What a SyncTarget is read from, for `link` (the table, or the claim's updated rows)."""
    return (
        select(
            link,
            ExternalCalendar,
            Resource.timezone,
            Company.settings,
            Resource.settings,
            exists().where(Unavailability.link_id == link.id),
            exists().where(QuarantinedEvent.link_id == link.id),
            exists().where(Appointment.resource_id == link.resource_id, Appointment.status == "confirmed"),
            *extra,
        )
        .join(ExternalCalendar, ExternalCalendar.id == link.connection_id)
        .join(Resource, Resource.id == link.resource_id)
        .join(Company, Company.id == Resource.company_id)
    )


def _sync_target(row: Sequence[Any]) -> SyncTarget:
    link, connection, timezone, company, resource, has_rows, has_quarantined, has_appointments = row
    settings = (dict(company or {}), dict(resource or {}))
    return SyncTarget(link, connection, timezone, *settings, has_rows, has_quarantined, has_appointments)


def _claim_with_target(claim_sql: str) -> Select[Any]:
    """A claim that returns its links' sync targets in the same statement (one round trip per
    claim instead of two): the claimed rows, as updated, read as CalendarLink."""
    claimed_columns = [column(c.name, c.type) for c in CalendarLink.__table__.c]
    claimed_columns += [column("claimed_requested_at", TZ), column("claimed_interactive"), column("claimed_full")]
    claimed = text(claim_sql).columns(*claimed_columns).cte("claimed")
    link = aliased(CalendarLink, claimed, adapt_on_names=True)
    return _select_target(link, claimed.c.claimed_requested_at, claimed.c.claimed_interactive, claimed.c.claimed_full)


# Built once (once per sync, building them each time was a quarter of their CPU).
_SYNC_TARGET = _select_target(CalendarLink).where(CalendarLink.id == bindparam("link_id"))
_CLAIM_DUE = _claim_with_target(_CLAIM_DUE_SQL)
_CLAIM_LINKS = _claim_with_target(_CLAIM_LINKS_SQL)


async def sync_target(*, session: AsyncSession, link_id: int) -> SyncTarget | None:
    """The link with its connection, resource time zone and busy-rule settings.

    One link per statement: PostgreSQL plans `id = ANY(array)` afresh on every execution
    (its generic plan looks costlier), so a list would forgo the prepared plan."""
    row = (await session.execute(_SYNC_TARGET, {"link_id": link_id})).first()
    return None if row is None else _sync_target(row)


async def read_links(
    *, session: AsyncSession, resource_id: str, connection_id: int | None = None, active_only: bool = True
) -> list[CalendarLink]:
    """The resource's read links (of one connection, when named), oldest first."""
    stmt = (
        select(CalendarLink)
        .join(ExternalCalendar, ExternalCalendar.id == CalendarLink.connection_id)
        .where(CalendarLink.resource_id == resource_id, CalendarLink.read)
        .order_by(CalendarLink.id)
    )
    if connection_id is not None:
        stmt = stmt.where(CalendarLink.connection_id == connection_id)
    if active_only:
        stmt = stmt.where(ExternalCalendar.status == "active")
    return list((await session.execute(stmt)).scalars())


async def get_link(*, session: AsyncSession, link_id: int) -> CalendarLink | None:
    """One link as it is now (never a cached instance)."""
    stmt = select(CalendarLink).where(CalendarLink.id == link_id).execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()
