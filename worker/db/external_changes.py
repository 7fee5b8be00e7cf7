"""What a sync learns about appointments: our events changed at the provider, and conflicts.

Both report to the main API through the notification outbox, in the sync's transaction, and
each change is reported once: a moved event's new etag and a deleted event's flag are
recorded on appointment_events, and a conflict is reported when a busy row is written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.notifications import enqueue_event


@dataclass(frozen=True, slots=True)
class OwnEvent:
    """An event calsync wrote for an appointment, as the provider lists it now."""

    event_id: str
    appointment_id: str
    start: datetime
    end: datetime
    etag: str | None


# Moved: the event no longer shows the times we last wrote, and it is not our own write in
# flight (written_version is current). Recording the etag makes the report once per change.
_MOVED = text(
    """
WITH ours AS (
  SELECT x->>0 AS event_id, x->>1 AS appointment_id, CAST(x->>2 AS timestamptz) AS s,
         CAST(x->>3 AS timestamptz) AS e, x->>4 AS etag
  FROM jsonb_array_elements(CAST(:ours AS jsonb)) AS x
)
UPDATE appointment_events ae SET etag = ours.etag, updated_at = now()
FROM ours, appointments a
WHERE a.id = ours.appointment_id AND ae.appointment_id = a.id AND ae.link_id = :link_id
  AND ae.provider_event_id = ours.event_id AND NOT ae.deleted AND a.status = 'confirmed'
  AND ae.written_version = a.version AND ae.etag IS DISTINCT FROM ours.etag
  AND (a.start_at, a.end_at) IS DISTINCT FROM (ours.s, ours.e)
RETURNING a.id, a.resource_id, ours.s, ours.e
"""
)

# Deleted: a confirmed appointment's event disappeared. Flagged, so a later version of the
# appointment creates it again (explicitly), and the deletion is reported once.
_DELETED = text(
    """
UPDATE appointment_events ae SET deleted = true, etag = NULL, updated_at = now()
FROM appointments a
WHERE a.id = ae.appointment_id AND ae.link_id = :link_id AND NOT ae.deleted AND a.status = 'confirmed'
  AND ae.provider_event_id = ANY(CAST(:removed AS text[]))
RETURNING a.id, a.resource_id, a.start_at, a.end_at
"""
)

# Conflicts: busy rows this sync just wrote (synced_at = now) that overlap a confirmed appointment.
_CONFLICTS = text(
    """
SELECT a.id, u.provider_event_id, u.start_at, u.end_at
FROM unavailability u
JOIN appointments a ON a.resource_id = u.resource_id AND a.status = 'confirmed'
     AND a.start_at < u.end_at AND a.end_at > u.start_at
WHERE u.link_id = :link_id AND u.synced_at = :now AND u.provider_event_id = ANY(CAST(:ids AS text[]))
"""
)

_COMPANY = text("SELECT company_id FROM resources WHERE id = :resource_id")


async def _company(session: AsyncSession, resource_id: str) -> str | None:
    return (await session.execute(_COMPANY, {"resource_id": resource_id})).scalar_one_or_none()


async def report_own_event_changes(
    *, session: AsyncSession, link_id: int, ours: Sequence[OwnEvent], removed: Sequence[str], now: datetime
) -> int:
    """Report appointment events moved or deleted at the provider; returns how many."""
    changes: list[tuple[str, str, str, datetime, datetime]] = []
    if ours:
        payload = json.dumps(
            [[o.event_id, o.appointment_id, o.start.isoformat(), o.end.isoformat(), o.etag] for o in ours]
        )
        for row in await session.execute(_MOVED, {"ours": payload, "link_id": link_id}):
            changes.append((row[0], row[1], "moved", row[2], row[3]))
    if removed:
        for row in await session.execute(_DELETED, {"removed": list(removed), "link_id": link_id}):
            changes.append((row[0], row[1], "deleted", row[2], row[3]))
    for appointment_id, resource_id, change, start, end in changes:
        obj = {"appointmentId": appointment_id, "change": change, "start": start.isoformat(), "end": end.isoformat()}
        await _emit(session, resource_id, "appointment.changedExternally", obj, now)
    return len(changes)


async def report_conflicts(
    *, session: AsyncSession, resource_id: str, link_id: int, event_ids: Sequence[str], now: datetime
) -> int:
    """Report busy rows just written that overlap a confirmed appointment; returns how many."""
    if not event_ids:
        return 0
    params = {"link_id": link_id, "now": now, "ids": list(event_ids)}
    rows = (await session.execute(_CONFLICTS, params)).all()
    for appointment_id, event_id, start, end in rows:
        obj = {"appointmentId": appointment_id, "providerEventId": event_id, "linkId": link_id}
        await _emit(
            session,
            resource_id,
            "appointment.conflict",
            obj | {"start": start.isoformat(), "end": end.isoformat()},
            now,
        )
    return len(rows)


async def _emit(session: AsyncSession, resource_id: str, event_type: str, obj: dict[str, Any], now: datetime) -> None:
    company = await _company(session, resource_id)
    if company is not None:
        await enqueue_event(
            session=session, company_id=company, event_type=event_type, resource_id=resource_id, obj=obj, now=now
        )
