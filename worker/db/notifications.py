"""Webhook endpoints and the delivery outbox; `enqueue_event` is the transactional emit.

Callers emit inside the transaction that made the change, so an event exists exactly when
its cause committed.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.tables import WebhookDelivery, WebhookEndpoint

EVENT_TYPES = (
    "externalCalendar.reauthRequired",
    "externalCalendar.active",
    "externalCalendar.syncFailing",
    "externalCalendar.recovered",
    "externalCalendar.pushDegraded",
    "appointment.writeFailed",
    "appointment.changedExternally",
    "appointment.conflict",
)


async def create_endpoint(
    *, session: AsyncSession, company_id: str, url: str, event_types: list[str], secret_enc: str
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        id=str(uuid.uuid4()), company_id=company_id, url=url, event_types=event_types, secret_enc=secret_enc
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def endpoints_of(*, session: AsyncSession, company_id: str) -> list[WebhookEndpoint]:
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.company_id == company_id).order_by(WebhookEndpoint.created_at)
    return list((await session.execute(stmt)).scalars())


async def get_endpoint(*, session: AsyncSession, company_id: str, endpoint_id: str) -> WebhookEndpoint | None:
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.company_id == company_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def delete_endpoint(*, session: AsyncSession, company_id: str, endpoint_id: str) -> bool:
    stmt = delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.company_id == company_id)
    return bool((await session.execute(stmt)).rowcount)  # type: ignore[attr-defined]


async def rotate_secret(
    *, session: AsyncSession, endpoint: WebhookEndpoint, new_secret_enc: str, overlap_until: datetime
) -> None:
    """Put a new secret first; the old one still signs until `overlap_until`."""
    endpoint.previous_secret_enc = endpoint.secret_enc
    endpoint.previous_secret_expires_at = overlap_until
    endpoint.secret_enc = new_secret_enc
    await session.flush()


async def enqueue_event(
    *,
    session: AsyncSession,
    company_id: str,
    event_type: str,
    resource_id: str | None,
    obj: dict[str, Any],
    now: datetime,
) -> int:
    """One delivery per endpoint of the company subscribed to `event_type`; returns how many."""
    event_id = str(uuid.uuid4())
    payload = {
        "id": event_id,
        "type": event_type,
        "companyId": company_id,
        "resourceId": resource_id,
        "object": obj,
        "createdAt": now.isoformat(),
    }
    endpoints = select(WebhookEndpoint.id).where(
        WebhookEndpoint.company_id == company_id,
        WebhookEndpoint.event_types.contains([event_type]),
    )
    ids = list((await session.execute(endpoints)).scalars())
    if not ids:
        return 0
    rows = [
        {
            "id": str(uuid.uuid4()),
            "endpoint_id": endpoint_id,
            "event_id": event_id,
            "event_type": event_type,
            "payload": payload,
            "next_attempt_at": now,
        }
        for endpoint_id in ids
    ]
    await session.execute(insert(WebhookDelivery), rows)
    return len(rows)


async def company_of_resource(*, session: AsyncSession, resource_id: str) -> str | None:
    row = await session.execute(text("SELECT company_id FROM resources WHERE id = :r"), {"r": resource_id})
    return row.scalar_one_or_none()


async def claim_due(
    *, session: AsyncSession, owner: str, now: datetime, lease_seconds: int, limit: int
) -> list[tuple[WebhookDelivery, WebhookEndpoint]]:
    """Lease due deliveries (SKIP LOCKED: several processes never send one twice at once)."""
    due = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.lease_expires_at.is_(None), WebhookDelivery.lease_expires_at < now),
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.execute(due)).scalars())
    if not ids:
        return []
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(ids))
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds))
    )
    stmt = (
        select(WebhookDelivery, WebhookEndpoint)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id.in_(ids))
    )
    return [(row[0], row[1]) for row in await session.execute(stmt)]


async def record_attempt(
    *,
    session: AsyncSession,
    delivery_id: str,
    delivered: bool,
    now: datetime,
    status_code: int | None,
    error: str | None,
    next_attempt_at: datetime | None,
) -> None:
    """Outcome of one attempt: delivered, retry at `next_attempt_at`, or failed for good (None)."""
    values: dict[str, Any] = {
        "attempts": WebhookDelivery.attempts + 1,
        "last_status": status_code,
        "last_error": error,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if delivered:
        values |= {"status": "delivered", "delivered_at": now}
    elif next_attempt_at is None:
        values["status"] = "failed"
    else:
        values["next_attempt_at"] = next_attempt_at
    await session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values))


async def deliveries_of(*, session: AsyncSession, endpoint_id: str, limit: int = 100) -> list[WebhookDelivery]:
    stmt = (
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.created_at.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def redeliver(*, session: AsyncSession, endpoint_id: str, delivery_id: str, now: datetime) -> bool:
    """Queue a delivery again (same event id), whatever its outcome was."""
    stmt = (
        update(WebhookDelivery)
        .where(and_(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id))
        .values(status="pending", next_attempt_at=now, lease_owner=None, lease_expires_at=None)
    )
    return bool((await session.execute(stmt)).rowcount)  # type: ignore[attr-defined]
