"""Push columns of calendar links: channels and subscriptions, their renewal schedule, messages.

A link's push is one Google channel or one Graph subscription. `push_renew_at` says when the
push job next touches the link (open, renew, retry after a failure, or stop after a
deselect); a claim moves it forward by a lease so two workers never act on one link at once.
Secrets are stored only as SHA-256 hashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from worker.db.notifications import company_of_resource, enqueue_event
from worker.db.tables import CalendarLink, ExternalCalendar

GOOGLE = "google_channel"
GRAPH = "graph_subscription"
# A Google channel is unproven until its `sync` message arrives; the webhook clears this.
AWAITING_FIRST_MESSAGE = "push: waiting for the channel's first message"


@dataclass(frozen=True, slots=True)
class PushAuth:
    """Who a channel / subscription id belongs to and its secret's hash (immutable per id)."""

    link_id: int
    push_id: str
    kind: str | None
    secret_hash: str | None


@dataclass(frozen=True, slots=True)
class Noted:
    """What recording change messages did to one link."""

    link_id: int
    read: bool  # false: the link is no longer read, nothing was recorded
    fresh: bool  # a new sync request was written (none was pending)
    syncing: bool  # a worker holds the link's lease right now


@dataclass(frozen=True, slots=True)
class PushState:
    """A link's push columns as they were before a renewal (restored if it fails)."""

    kind: str | None
    push_id: str | None
    resource_id: str | None
    secret_hash: str | None
    expires_at: datetime | None
    last_message_at: datetime | None
    error: str | None

    @classmethod
    def of(cls, link: CalendarLink) -> PushState:
        return cls(
            link.push_kind,
            link.push_id,
            link.push_resource_id,
            link.push_secret_hash,
            link.push_expires_at,
            link.push_last_message_at,
            link.push_error,
        )


_CLEARED: dict[str, Any] = {
    "push_kind": None,
    "push_id": None,
    "push_resource_id": None,
    "push_secret_hash": None,
    "push_expires_at": None,
    "push_last_message_at": None,
    "push_last_message_number": None,
}


async def find_auth(*, session: AsyncSession | AsyncConnection, push_ids: Sequence[str]) -> dict[str, PushAuth]:
    """The links holding these channel/subscription ids, by id (unknown ids are absent)."""
    link = CalendarLink
    stmt = select(link.id, link.push_id, link.push_kind, link.push_secret_hash).where(link.push_id.in_(list(push_ids)))
    rows = (await session.execute(stmt)).all()
    return {str(r[1]): PushAuth(r[0], str(r[1]), r[2], r[3]) for r in rows}


# One statement (one round trip, its own transaction) per batch of change messages:
# - a new sync request where none is pending (as links.request_sync: the earliest time stays;
#   the sync claim spaces requested syncs of one link, so a storm costs a few syncs);
# - the message time, when a request is written or the last note is older than :note_every;
# - synchronous_commit off for this transaction only: a crash may lose the last fraction of a
#   second of requests, which the reconciliation poll covers (push is a hint), and the
#   acknowledgement no longer waits for a disk flush.
# Nothing is written for a message folded into a pending request.
_NOTE = text(
    """
WITH cfg AS (SELECT set_config('synchronous_commit', 'off', true) AS v),
cur AS (
    SELECT id, read, sync_requested_at IS NOT NULL AS pending,
           COALESCE(lease_expires_at > :now, false) AS syncing,
           read AND (sync_requested_at IS NULL OR push_error = :awaiting OR push_last_message_at IS NULL
             OR push_last_message_at <= :now - make_interval(secs => :note_every)) AS note
    FROM calendar_links WHERE id = ANY(CAST(:ids AS bigint[]))
),
upd AS (
    UPDATE calendar_links l SET
        sync_requested_at = CASE WHEN cur.read AND NOT cur.pending
            THEN COALESCE(l.sync_requested_at, :now) ELSE l.sync_requested_at END,
        push_last_message_at = CASE WHEN cur.note THEN :now ELSE l.push_last_message_at END,
        push_last_message_number = CASE WHEN cur.note AND CAST(:number AS bigint) IS NOT NULL
            THEN GREATEST(COALESCE(l.push_last_message_number, 0), CAST(:number AS bigint))
            ELSE l.push_last_message_number END,
        push_error = CASE WHEN cur.note THEN NULLIF(l.push_error, :awaiting) ELSE l.push_error END
    FROM cur WHERE l.id = cur.id AND (cur.read AND NOT cur.pending OR cur.note)
    RETURNING l.id
)
SELECT cur.id, cur.read, cur.pending, cur.syncing, (SELECT count(*) FROM upd), (SELECT v FROM cfg) FROM cur
"""
)


async def note_changes(
    *,
    conn: AsyncSession | AsyncConnection,
    link_ids: Sequence[int],
    now: datetime,
    note_every_seconds: float,
    number: int | None = None,
) -> list[Noted]:
    """Record change messages for links (one statement; run it in autocommit); unknown ids are absent."""
    params = {
        "ids": list(link_ids),
        "now": now,
        "note_every": note_every_seconds,
        "number": number,
        "awaiting": AWAITING_FIRST_MESSAGE,
    }
    rows = (await conn.execute(_NOTE, params)).all()
    return [Noted(r[0], r[1], r[1] and not r[2], r[3]) for r in rows]


async def record_message(
    *, session: AsyncSession, link_ids: Sequence[int], now: datetime, number: int | None = None
) -> None:
    """Note that the provider reached us (proves the channel works; clears the waiting mark)."""
    link = CalendarLink
    values: dict[str, Any] = {
        "push_last_message_at": now,
        "push_error": func.nullif(link.push_error, AWAITING_FIRST_MESSAGE),
    }
    if number is not None:
        values["push_last_message_number"] = func.greatest(func.coalesce(link.push_last_message_number, 0), number)
    await session.execute(update(link).where(link.id.in_(list(link_ids))).values(**values))


# Due: a read link of an active connection whose renewal time has come (or that never had
# push), or a deselected link still holding a channel to stop: that one at once, unless a
# worker holds it (a lease never reaches past now + lease, a scheduled renewal usually does).
_CLAIM = text(
    """
WITH due AS (
    SELECT l.id
    FROM calendar_links l JOIN external_calendars c ON c.id = l.connection_id
    WHERE c.status = 'active'
      AND (l.read OR l.push_id IS NOT NULL)
      AND (l.push_renew_at IS NULL OR l.push_renew_at <= :now OR (NOT l.read AND l.push_renew_at > :until))
      AND (CAST(:ids AS bigint[]) IS NULL OR l.id = ANY(CAST(:ids AS bigint[])))
    ORDER BY l.push_renew_at NULLS FIRST, l.id
    LIMIT :limit
    FOR UPDATE OF l SKIP LOCKED
)
UPDATE calendar_links l SET push_renew_at = :until
FROM due WHERE l.id = due.id
RETURNING l.id
"""
)


async def claim_due(
    *, session: AsyncSession, now: datetime, until: datetime, limit: int, link_ids: Sequence[int] | None = None
) -> list[int]:
    """Lease up to `limit` links whose push needs work, until `until`; returns their ids."""
    params = {"now": now, "until": until, "limit": limit, "ids": list(link_ids) if link_ids is not None else None}
    return [r[0] for r in (await session.execute(_CLAIM, params)).all()]


async def load(*, session: AsyncSession, link_id: int) -> tuple[CalendarLink, ExternalCalendar] | None:
    """The link and its connection, as they are now."""
    stmt = (
        select(CalendarLink, ExternalCalendar)
        .join(ExternalCalendar, ExternalCalendar.id == CalendarLink.connection_id)
        .where(CalendarLink.id == link_id)
        .execution_options(populate_existing=True)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0], row[1])


async def begin_channel(*, session: AsyncSession, link_id: int, push_id: str, secret_hash: str) -> None:
    """Record a Google channel id and token hash *before* the watch call (its first message may win the race)."""
    values = _CLEARED | {
        "push_kind": GOOGLE,
        "push_id": push_id,
        "push_secret_hash": secret_hash,
        "push_error": AWAITING_FIRST_MESSAGE,
    }
    await session.execute(update(CalendarLink).where(CalendarLink.id == link_id).values(**values))


async def save_channel(
    *, session: AsyncSession, link_id: int, push_id: str, resource_id: str, expires_at: datetime, renew_at: datetime
) -> bool:
    """Complete a channel opened by `begin_channel` (fenced by its id); False if it was replaced."""
    stmt = (
        update(CalendarLink)
        .where(CalendarLink.id == link_id, CalendarLink.push_id == push_id)
        .values(push_resource_id=resource_id, push_expires_at=expires_at, push_renew_at=renew_at, push_failures=0)
    )
    return bool((await session.execute(stmt)).rowcount)  # type: ignore[attr-defined]


async def save_subscription(
    *,
    session: AsyncSession,
    link_id: int,
    push_id: str,
    expires_at: datetime,
    renew_at: datetime,
    secret_hash: str | None = None,
) -> None:
    """Store a created (with its clientState hash) or renewed Graph subscription; push is healthy."""
    values: dict[str, Any] = {
        "push_kind": GRAPH,
        "push_id": push_id,
        "push_expires_at": expires_at,
        "push_renew_at": renew_at,
        "push_failures": 0,
        "push_error": None,
    }
    if secret_hash is not None:
        values |= {"push_secret_hash": secret_hash, "push_last_message_at": None, "push_last_message_number": None}
    await session.execute(update(CalendarLink).where(CalendarLink.id == link_id).values(**values))


async def restore(*, session: AsyncSession, link_id: int, state: PushState) -> None:
    """Put back the push columns a failed renewal replaced (the old channel still works)."""
    values = {
        "push_kind": state.kind,
        "push_id": state.push_id,
        "push_resource_id": state.resource_id,
        "push_secret_hash": state.secret_hash,
        "push_expires_at": state.expires_at,
        "push_last_message_at": state.last_message_at,
        "push_error": state.error,
    }
    await session.execute(update(CalendarLink).where(CalendarLink.id == link_id).values(**values))


async def fail(*, session: AsyncSession, link_id: int, error: str, retry_at: datetime, now: datetime) -> None:
    """Count a failed open/renewal, show it on the calendar status, schedule the retry.

    The first failure in a row tells the main API (externalCalendar.pushDegraded): the link
    falls back to polling until push works again.
    """
    link = CalendarLink
    stmt = (
        update(link)
        .where(link.id == link_id)
        .values(push_failures=link.push_failures + 1, push_error=error[:2000], push_renew_at=retry_at)
        .returning(link.push_failures, link.resource_id, link.connection_id, link.calendar_id)
    )
    row = (await session.execute(stmt)).first()
    if row is None or row.push_failures != 1:
        return
    company = await company_of_resource(session=session, resource_id=row.resource_id)
    if company is not None:
        obj = {"externalCalendarId": row.connection_id, "calendarId": row.calendar_id, "error": error[:500]}
        await enqueue_event(
            session=session,
            company_id=company,
            event_type="externalCalendar.pushDegraded",
            resource_id=row.resource_id,
            obj=obj,
            now=now,
        )


async def clear(
    *,
    session: AsyncSession,
    link_ids: Sequence[int],
    renew_at: datetime | None = None,
    error: str | None = None,
) -> None:
    """Forget the links' channel or subscription (stopped, or gone at the provider)."""
    values = _CLEARED | {"push_renew_at": renew_at, "push_error": error, "push_failures": 0}
    await session.execute(update(CalendarLink).where(CalendarLink.id.in_(list(link_ids))).values(**values))


async def schedule_now(*, session: AsyncSession, link_ids: Sequence[int], now: datetime) -> int:
    """Make the links' renewal due at once (Graph asked for reauthorization); returns how many."""
    link = CalendarLink
    stmt = update(link).where(link.id.in_(list(link_ids)), link.push_id.is_not(None)).values(push_renew_at=now)
    return int((await session.execute(stmt)).rowcount or 0)  # type: ignore[attr-defined]


async def pushed_links(*, session: AsyncSession, connection_id: int) -> list[CalendarLink]:
    """A connection's links that hold a channel or subscription (to stop them on disconnect)."""
    stmt = select(CalendarLink).where(CalendarLink.connection_id == connection_id, CalendarLink.push_id.is_not(None))
    return list((await session.execute(stmt)).scalars())
