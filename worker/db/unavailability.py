"""Unavailability rows: set-based apply of a page of busy intervals, reconcile deletes, reads.

Every write is one statement for a whole page (one JSON document, expanded server-side),
never a row at a time. An upsert touches a row only when its busy time really changed, so a
sync that changes nothing writes nothing and does not purge caches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


# Per event, so a Struct (see providers.base.ProviderEvent); array_like: msgspec encodes a page
# of rows as JSON arrays in C, field order being the statements' element order.
class BusyRow(msgspec.Struct, frozen=True, array_like=True):
    """One busy interval of one provider event, in UTC."""

    event_id: str
    start: datetime
    end: datetime
    all_day: bool = False
    show_as: str = "busy"
    rule: str = "busy"
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class BusySpan:
    """A stored busy row of a resource, as availability reads it."""

    link_id: int
    event_id: str
    start: datetime
    end: datetime
    all_day: bool
    show_as: str
    rule: str


_ENCODER = msgspec.json.Encoder()


# What a foreign key would check, once per statement: the link exists, is this resource's, stays.
_LINK = """link AS (
    SELECT id FROM calendar_links WHERE id = :link_id AND resource_id = :resource_id FOR KEY SHARE
)"""
# A page travels as one JSON document of BusyRow arrays, encoded by msgspec in C (instants as
# RFC 3339 text with microseconds, which PostgreSQL reads back exactly).
_INSERT = """
INSERT INTO unavailability (resource_id, link_id, provider_event_id, start_at, end_at, all_day, show_as, rule, etag,
                            synced_at)
SELECT :resource_id, :link_id, x->>0, CAST(x->>1 AS timestamptz), CAST(x->>2 AS timestamptz), CAST(x->3 AS boolean),
       x->>4, x->>5, x->>6, :now
FROM link, jsonb_array_elements(CAST(:rows AS jsonb)) AS x
"""
_INSERT_NEW = text(f"WITH {_LINK} {_INSERT}")
_UPSERT = text(
    f"""
WITH {_LINK}, written AS ({_INSERT}
ON CONFLICT (link_id, provider_event_id) DO UPDATE
SET start_at = EXCLUDED.start_at, end_at = EXCLUDED.end_at, all_day = EXCLUDED.all_day,
    show_as = EXCLUDED.show_as, rule = EXCLUDED.rule, etag = EXCLUDED.etag, synced_at = EXCLUDED.synced_at
WHERE (unavailability.start_at, unavailability.end_at, unavailability.all_day, unavailability.show_as,
       unavailability.rule)
      IS DISTINCT FROM (EXCLUDED.start_at, EXCLUDED.end_at, EXCLUDED.all_day, EXCLUDED.show_as, EXCLUDED.rule)
RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FROM written
"""
)


def _json_rows(rows: Sequence[BusyRow]) -> str:
    """[[id, start, end, all_day, show_as, rule, etag], ...], all in C."""
    return _ENCODER.encode(rows).decode()


def _json_ids(ids: Sequence[str]) -> str:
    return _ENCODER.encode(ids).decode()


async def upsert(
    *, session: AsyncSession, resource_id: str, link_id: int, rows: Sequence[BusyRow], now: datetime
) -> tuple[int, int]:
    """Insert new and update changed rows of one link in one statement; (added, updated).

    Rows must have distinct event ids (a page never names an event twice after dedupe).
    """
    if not rows:
        return 0, 0
    params = {"resource_id": resource_id, "link_id": link_id, "now": now, "rows": _json_rows(rows)}
    added, written = (await session.execute(_UPSERT, params)).one()
    return int(added), int(written) - int(added)


async def insert_new(
    *, session: AsyncSession, resource_id: str, link_id: int, rows: Sequence[BusyRow], now: datetime
) -> int:
    """Insert rows of events the link has no row for (a plain insert: a third cheaper for
    PostgreSQL than the upsert's speculative one); a row that exists fails the statement."""
    if not rows:
        return 0
    params = {"resource_id": resource_id, "link_id": link_id, "now": now, "rows": _json_rows(rows)}
    result = await session.execute(_INSERT_NEW, params)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def delete_events(*, session: AsyncSession, link_id: int, event_ids: Sequence[str]) -> int:
    """Delete the rows of these events (removed, cancelled, or no longer busy)."""
    if not event_ids:
        return 0
    stmt = text("DELETE FROM unavailability WHERE link_id = :link_id AND provider_event_id = ANY(CAST(:ids AS text[]))")
    result = await session.execute(stmt, {"link_id": link_id, "ids": list(event_ids)})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# An anti-join against the kept ids (hashed by the planner), not a per-row scan of an array.
_NOT_KEPT = (
    "NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(CAST(:keep AS jsonb)) AS k(id) "
    "WHERE k.id = u.provider_event_id)"
)


async def delete_unseen(*, session: AsyncSession, link_id: int, keep_ids: Sequence[str]) -> int:
    """After a full listing: delete every row of the link whose event was not kept."""
    stmt = text(f"DELETE FROM unavailability u WHERE u.link_id = :link_id AND {_NOT_KEPT}")
    result = await session.execute(stmt, {"link_id": link_id, "keep": _json_ids(keep_ids)})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def delete_unseen_in_range(
    *, session: AsyncSession, link_id: int, keep_ids: Sequence[str], start: datetime, end: datetime
) -> int:
    """After a listing of [start, end): delete rows of the link overlapping it that were not kept."""
    stmt = text(
        f"DELETE FROM unavailability u WHERE u.link_id = :link_id AND u.start_at < :end AND u.end_at > :start "
        f"AND {_NOT_KEPT}"
    )
    params = {"link_id": link_id, "keep": _json_ids(keep_ids), "start": start, "end": end}
    result = await session.execute(stmt, params)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def busy_overlapping(
    *, session: AsyncSession, resource_id: str, start: datetime, end: datetime
) -> list[BusySpan]:
    """Busy rows of a resource overlapping [start, end), ordered by start (index-backed)."""
    stmt = text(
        "SELECT link_id, provider_event_id, start_at, end_at, all_day, show_as, rule FROM unavailability "
        "WHERE resource_id = :resource_id AND start_at < :end AND end_at > :start ORDER BY start_at, end_at"
    )
    rows = await session.execute(stmt, {"resource_id": resource_id, "start": start, "end": end})
    return [BusySpan(*row) for row in rows.all()]


async def count_for_link(*, session: AsyncSession, link_id: int) -> int:
    """How many busy rows a link has."""
    stmt = text("SELECT count(*) FROM unavailability WHERE link_id = :link_id")
    return int((await session.execute(stmt, {"link_id": link_id})).scalar_one())
