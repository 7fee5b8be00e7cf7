"""The write outbox: one entry per appointment, leased with SKIP LOCKED, retried with backoff.

States: `pending` (due at `next_attempt_at`), `waiting_calendar` (no usable calendar yet:
picked up again as soon as the resource has one) and `failed` (a permanent refusal; only a
newer version of the appointment or `retry_failed` brings it back). A done entry is deleted.

Coalescing: `enqueue` on an existing entry makes it due now but keeps its lease, so a write
in flight finishes first; `complete` then deletes the entry only if the appointment has no
newer version than the one written, else it stays due and the newer version is written next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.tables import Appointment, WriteOutbox

WAITING_ERROR = "no write calendar"


@dataclass(frozen=True, slots=True)
class Entry:
    """A leased outbox entry."""

    id: int
    appointment_id: str
    resource_id: str
    attempts: int


async def enqueue(*, session: AsyncSession, appointment_id: str, resource_id: str, now: datetime) -> None:
    """Make the appointment's entry due now (one entry per appointment; its lease is kept)."""
    stmt = insert(WriteOutbox).values(
        appointment_id=appointment_id, resource_id=resource_id, state="pending", next_attempt_at=now, enqueued_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[WriteOutbox.appointment_id],
        set_={
            "resource_id": resource_id,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": None,
        },
    )
    await session.execute(stmt)


# Due: pending and past its next attempt, or waiting for a calendar that is now usable (the
# event's calendar if it has a live one, else the resource's write calendar, on an active
# connection). A lease that expired (its worker died) no longer protects the entry.
_CLAIM = text(
    """
WITH due AS (
    SELECT o.id
    FROM write_outbox o
    WHERE (o.lease_expires_at IS NULL OR o.lease_expires_at < :now)
      AND (
        (o.state = 'pending' AND o.next_attempt_at <= :now)
        OR (o.state = 'waiting_calendar' AND EXISTS (
            SELECT 1
            FROM calendar_links l
            JOIN external_calendars c ON c.id = l.connection_id AND c.status = 'active'
            LEFT JOIN appointment_events e ON e.appointment_id = o.appointment_id AND NOT e.deleted
            WHERE (e.link_id IS NOT NULL AND l.id = e.link_id)
               OR (e.link_id IS NULL AND l.resource_id = o.resource_id AND l.write)
        ))
      )
    ORDER BY o.next_attempt_at
    LIMIT :limit
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE write_outbox o
SET lease_owner = :owner, lease_expires_at = :expires, state = 'pending'
FROM due
WHERE o.id = due.id
RETURNING o.id, o.appointment_id, o.resource_id, o.attempts
"""
)


async def claim_due(
    *, session: AsyncSession, owner: str, now: datetime, lease_seconds: float, limit: int
) -> list[Entry]:
    """Lease up to `limit` due entries; concurrent workers never lease the same one."""
    params = {"now": now, "owner": owner, "expires": now + timedelta(seconds=lease_seconds), "limit": limit}
    rows = (await session.execute(_CLAIM, params)).all()
    return [Entry(r[0], r[1], r[2], r[3]) for r in rows]


_RELEASE = "lease_owner = NULL, lease_expires_at = NULL"

# Done: delete each entry still leased by us whose appointment is not newer than the version
# written; the others stay, due now, so the newer version is written next.
_COMPLETE = text(
    f"""
WITH done AS (
    SELECT o.id, (a.version IS NOT NULL AND a.version > v.version) AS newer
    FROM unnest(CAST(:ids AS bigint[]), CAST(:versions AS bigint[])) AS v(id, version)
    JOIN write_outbox o ON o.id = v.id AND o.lease_owner = :owner
    LEFT JOIN appointments a ON a.id = o.appointment_id
), gone AS (
    DELETE FROM write_outbox o USING done WHERE o.id = done.id AND NOT done.newer RETURNING o.id
)
UPDATE write_outbox o SET state = 'pending', next_attempt_at = :now, {_RELEASE}
FROM done WHERE o.id = done.id AND done.newer
"""
)


async def complete(*, session: AsyncSession, owner: str, done: Sequence[tuple[int, int]], now: datetime) -> None:
    """Entries written, as (entry id, version written): deleted, or due again if a newer version came."""
    if done:
        params = {"ids": [i for i, _ in done], "versions": [v for _, v in done], "owner": owner, "now": now}
        await session.execute(_COMPLETE, params)


_RETRY = text(
    f"""
UPDATE write_outbox o
SET state = 'pending', attempts = o.attempts + 1, next_attempt_at = v.at, last_error = v.error, {_RELEASE}
FROM unnest(CAST(:ids AS bigint[]), CAST(:ats AS timestamptz[]), CAST(:errors AS text[])) AS v(id, at, error)
WHERE o.id = v.id AND o.lease_owner = :owner
"""
)


async def retry_later(*, session: AsyncSession, owner: str, retries: Sequence[tuple[int, datetime, str]]) -> None:
    """Count a failed attempt of each (entry id, next attempt, error) and release it until then."""
    if retries:
        ids, ats, errors = (list(col) for col in zip(*retries, strict=True))
        await session.execute(_RETRY, {"ids": ids, "ats": ats, "errors": errors, "owner": owner})


_WAIT = text(
    f"""
UPDATE write_outbox o SET state = 'waiting_calendar', last_error = v.error, {_RELEASE}
FROM unnest(CAST(:ids AS bigint[]), CAST(:errors AS text[])) AS v(id, error)
WHERE o.id = v.id AND o.lease_owner = :owner
"""
)


async def wait_for_calendar(*, session: AsyncSession, owner: str, waits: Sequence[tuple[int, str]]) -> None:
    """Park each (entry id, reason) until its resource has a usable calendar (claim_due watches for it)."""
    if waits:
        await session.execute(_WAIT, {"ids": [i for i, _ in waits], "errors": [e for _, e in waits], "owner": owner})


async def requeue(*, session: AsyncSession, owner: str, entry_ids: Sequence[int], now: datetime) -> None:
    """Release entries due now, with no attempt counted (a first step done, the next one is due)."""
    await session.execute(
        update(WriteOutbox)
        .where(WriteOutbox.id.in_(list(entry_ids)), WriteOutbox.lease_owner == owner)
        .values(state="pending", next_attempt_at=now, lease_owner=None, lease_expires_at=None)
    )


async def extend_leases(*, session: AsyncSession, owner: str, entry_ids: Sequence[int], until: datetime) -> int:
    """Keep our leases of a batch still in flight; how many we still held."""
    stmt = (
        update(WriteOutbox)
        .where(WriteOutbox.id.in_(list(entry_ids)), WriteOutbox.lease_owner == owner)
        .values(lease_expires_at=until)
    )
    return int((await session.execute(stmt)).rowcount or 0)  # type: ignore[attr-defined]


async def give_up(*, session: AsyncSession, entry_id: int, owner: str, error: str, version: int, now: datetime) -> bool:
    """Mark the entry failed for good (False: a newer version arrived, so it is due again instead)."""
    newer = select(Appointment.id).where(Appointment.id == WriteOutbox.appointment_id, Appointment.version > version)
    owned = (WriteOutbox.id == entry_id) & (WriteOutbox.lease_owner == owner)
    release = {"lease_owner": None, "lease_expires_at": None}
    stmt = (
        update(WriteOutbox)
        .where(owned, ~newer.exists())
        .values(state="failed", attempts=WriteOutbox.attempts + 1, last_error=error, **release)
    )
    if (await session.execute(stmt)).rowcount:  # type: ignore[attr-defined]
        return True
    await session.execute(update(WriteOutbox).where(owned).values(state="pending", next_attempt_at=now, **release))
    return False


async def retry_failed(*, session: AsyncSession, resource_id: str, now: datetime) -> int:
    """Make a resource's failed entries due again (a new write calendar was chosen); how many."""
    stmt = (
        update(WriteOutbox)
        .where(WriteOutbox.resource_id == resource_id, WriteOutbox.state == "failed")
        .values(state="pending", attempts=0, next_attempt_at=now)
    )
    return int((await session.execute(stmt)).rowcount or 0)  # type: ignore[attr-defined]


async def states_of(*, session: AsyncSession, resource_id: str) -> dict[str, int]:
    """How many of a resource's writes are in each state (for GET externalCalendars)."""
    stmt = (
        select(WriteOutbox.state, func.count())
        .where(WriteOutbox.resource_id == resource_id)
        .group_by(WriteOutbox.state)
    )
    return {state: int(n) for state, n in (await session.execute(stmt)).all()}


async def count(*, session: AsyncSession) -> int:
    """Every entry not yet done (benchmarks wait for zero)."""
    return int((await session.execute(select(func.count()).select_from(WriteOutbox))).scalar_one())
