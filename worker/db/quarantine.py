"""Quarantined events: provider events that could not be parsed, kept raw per link."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    """One unreadable event: its id, why it was refused, and the raw provider JSON."""

    event_id: str
    reason: str
    raw: dict[str, Any]


_UPSERT = text(
    """
INSERT INTO quarantined_events (link_id, provider_event_id, reason, raw, first_seen_at, last_seen_at)
SELECT :link_id, q.id, q.reason, CAST(q.raw AS jsonb), :now, :now
FROM unnest(CAST(:ids AS text[]), CAST(:reasons AS text[]), CAST(:raws AS text[])) AS q(id, reason, raw)
ON CONFLICT (link_id, provider_event_id) DO UPDATE
SET reason = EXCLUDED.reason, raw = EXCLUDED.raw, last_seen_at = EXCLUDED.last_seen_at
"""
)


async def upsert(*, session: AsyncSession, link_id: int, rows: Sequence[QuarantineRow], now: datetime) -> int:
    """Record (or refresh) unreadable events of one link in one statement."""
    if not rows:
        return 0
    params = {
        "link_id": link_id,
        "now": now,
        "ids": [r.event_id for r in rows],
        "reasons": [r.reason for r in rows],
        "raws": [_storable(r.raw) for r in rows],
    }
    await session.execute(_UPSERT, params)
    return len(rows)


def _storable(raw: Any) -> str:
    """The raw JSON as PostgreSQL's jsonb takes it: a lone UTF-16 surrogate (a string cut
    mid-emoji, which providers send and jsonb refuses) becomes U+FFFD; the rest is kept."""
    text = json.dumps(raw, default=str, ensure_ascii=False)
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


async def release(*, session: AsyncSession, link_id: int, event_ids: Sequence[str]) -> int:
    """Forget quarantined events that are now readable or removed."""
    if not event_ids:
        return 0
    stmt = text(
        "DELETE FROM quarantined_events WHERE link_id = :link_id AND provider_event_id = ANY(CAST(:ids AS text[]))"
    )
    result = await session.execute(stmt, {"link_id": link_id, "ids": list(event_ids)})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def delete_unseen(*, session: AsyncSession, link_id: int, keep_ids: Sequence[str]) -> int:
    """After a full listing: forget quarantined events the listing no longer returned."""
    stmt = text(
        "DELETE FROM quarantined_events WHERE link_id = :link_id "
        "AND NOT (provider_event_id = ANY(CAST(:keep AS text[])))"
    )
    result = await session.execute(stmt, {"link_id": link_id, "keep": list(keep_ids)})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def counts(*, session: AsyncSession, link_ids: Sequence[int]) -> dict[int, int]:
    """How many quarantined events each link has (links without any are absent)."""
    if not link_ids:
        return {}
    stmt = text(
        "SELECT link_id, count(*) FROM quarantined_events WHERE link_id = ANY(CAST(:ids AS bigint[])) GROUP BY link_id"
    )
    rows = await session.execute(stmt, {"ids": list(link_ids)})
    return {int(r[0]): int(r[1]) for r in rows.all()}
