"""Rows that exercise every section of the operator summary (status page, CLI, gauges)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import make_connection, make_link, make_resource, new_id
from worker.db.tables import (
    Appointment,
    QuarantinedEvent,
    WebhookDelivery,
    WebhookEndpoint,
    WriteOutbox,
)

HOSTILE = "<script>alert('x')</script>"


@dataclass(frozen=True)
class Seeded:
    resource_id: str
    ok_link: int
    failing_link: int
    write_link: int
    now: datetime


async def seed_status(sessions: async_sessionmaker[AsyncSession], now: datetime) -> Seeded:
    """One healthy Google calendar, one failing, an Outlook connection needing reauth, backlog rows."""
    resource = await make_resource(sessions)
    google = await make_connection(
        sessions, resource=resource, provider="google", status="active", account_email="alice@example.com"
    )
    ok = await make_link(
        sessions,
        connection=google,
        calendar_id="primary",
        name="Alice main",
        read=True,
        last_synced_at=now - timedelta(minutes=2),
        push_kind="google_channel",
        push_id=new_id("chan"),
        push_expires_at=now + timedelta(minutes=30),
    )
    failing = await make_link(
        sessions,
        connection=google,
        calendar_id="team@group.calendar.google.com",
        name=f"Team {HOSTILE}",
        read=True,
        consecutive_failures=3,
        last_error=f"Unavailable: 503 from provider {HOSTILE}",
        next_attempt_at=now + timedelta(minutes=5),
    )
    outlook = await make_connection(
        sessions, resource=resource, provider="outlook", status="reauth_required", account_email="bob@example.com"
    )
    write = await make_link(sessions, connection=outlook, calendar_id="AAMk-write", name="Bob work", write=True)
    async with sessions() as session, session.begin():
        await _backlog(session, resource.id, resource.company_id, ok.id, now)
    return Seeded(resource.id, ok.id, failing.id, write.id, now)


async def _backlog(session: AsyncSession, resource_id: str, company_id: str, link_id: int, now: datetime) -> None:
    """Two outbox rows (one waiting for a calendar), a quarantined event, two webhook deliveries."""
    for state, age in (("pending", 10), ("waiting_calendar", 3)):
        appointment_id = new_id("appt")
        session.add(
            Appointment(
                id=appointment_id,
                resource_id=resource_id,
                start_at=now + timedelta(days=1),
                end_at=now + timedelta(days=1, hours=1),
                status="confirmed",
                version=1,
            )
        )
        await session.flush()  # no relationship() between the models: parents first, by hand
        session.add(
            WriteOutbox(
                appointment_id=appointment_id,
                resource_id=resource_id,
                state=state,
                enqueued_at=now - timedelta(minutes=age),
            )
        )
    session.add(QuarantinedEvent(link_id=link_id, provider_event_id="bad-1", reason="no start", raw={"id": "bad-1"}))
    endpoint_id = new_id("ep")
    session.add(
        WebhookEndpoint(
            id=endpoint_id, company_id=company_id, url="https://api.example/hook", event_types=[], secret_enc="x"
        )
    )
    await session.flush()
    for status in ("pending", "failed"):
        session.add(
            WebhookDelivery(
                id=new_id("dl"),
                endpoint_id=endpoint_id,
                event_id=new_id("ev"),
                event_type="externalCalendar.reauthRequired",
                payload={},
                status=status,
            )
        )
