"""Read-only summary queries behind /status, `calsync status` and the DB-backed gauges.

Every function is one aggregate statement (or one bounded page of calendars); none writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.tables import (
    Appointment,
    AppointmentEvent,
    CalendarLink,
    ExternalCalendar,
    QuarantinedEvent,
    Unavailability,
    WebhookDelivery,
    WriteOutbox,
)

CALENDAR_PAGE = 200  # the page shows the worst calendars first; the rest are counted, not listed


@dataclass(frozen=True, slots=True)
class CalendarRow:
    """One calendar link as an operator sees it."""

    link_id: int
    resource_id: str
    provider: str
    account_email: str | None
    connection_status: str
    calendar_id: str
    name: str
    read: bool
    write: bool
    last_synced_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    push_kind: str | None
    push_expires_at: datetime | None
    push_error: str | None
    next_attempt_at: datetime | None
    sync_requested_at: datetime | None


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    """Pending appointment writes: how many, in which state, and the oldest one's age."""

    total: int
    by_state: dict[str, int]
    oldest_enqueued_at: datetime | None

    def oldest_age_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.oldest_enqueued_at).total_seconds()) if self.oldest_enqueued_at else 0.0


@dataclass(frozen=True, slots=True)
class Summary:
    """Everything /status and `calsync status` show, read at one moment."""

    generated_at: datetime
    connections: dict[tuple[str, str], int]
    calendars: list[CalendarRow]
    calendars_total: int
    outbox: OutboxBacklog
    deliveries: dict[str, int]
    quarantined: int

    def connections_by_status(self) -> dict[str, int]:
        """Connection counts summed over providers."""
        out: dict[str, int] = {}
        for (_, status), count in self.connections.items():
            out[status] = out.get(status, 0) + count
        return out


async def connection_counts(*, session: AsyncSession) -> dict[tuple[str, str], int]:
    """Connections by (provider, status)."""
    ec = ExternalCalendar
    stmt = select(ec.provider, ec.status, func.count()).group_by(ec.provider, ec.status)
    return {(p, s): int(n) for p, s, n in (await session.execute(stmt)).all()}


async def calendar_count(*, session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(CalendarLink))).scalar_one())


async def calendar_rows(*, session: AsyncSession, limit: int = CALENDAR_PAGE) -> list[CalendarRow]:
    """Calendar links, the most troubled first: failing, then never or least recently synced."""
    link, conn = CalendarLink, ExternalCalendar
    stmt = (
        select(
            link.id.label("link_id"),
            link.resource_id,
            conn.provider,
            conn.account_email,
            conn.status.label("connection_status"),
            link.calendar_id,
            link.name,
            link.read,
            link.write,
            link.last_synced_at,
            link.last_error,
            link.consecutive_failures,
            link.push_kind,
            link.push_expires_at,
            link.push_error,
            link.next_attempt_at,
            link.sync_requested_at,
        )
        .join(conn, conn.id == link.connection_id)
        .order_by(
            link.consecutive_failures.desc(),
            (conn.status == "active").asc(),
            link.last_synced_at.asc().nulls_first(),
            link.id,
        )
        .limit(limit)
    )
    return [CalendarRow(**row._mapping) for row in (await session.execute(stmt)).all()]


async def outbox_backlog(*, session: AsyncSession) -> OutboxBacklog:
    """Write-outbox rows by state and the oldest enqueue time."""
    ob = WriteOutbox
    stmt = select(ob.state, func.count(), func.min(ob.enqueued_at)).group_by(ob.state)
    rows = (await session.execute(stmt)).all()
    by_state = {state: int(n) for state, n, _ in rows}
    oldest = min((o for _, _, o in rows if o is not None), default=None)
    return OutboxBacklog(sum(by_state.values()), by_state, oldest)


async def delivery_counts(*, session: AsyncSession) -> dict[str, int]:
    """Webhook deliveries that are not done: pending and failed (delivered ones are history)."""
    wd = WebhookDelivery
    stmt = select(wd.status, func.count()).where(wd.status.in_(("pending", "failed"))).group_by(wd.status)
    counts = {"pending": 0, "failed": 0}
    counts.update({s: int(n) for s, n in (await session.execute(stmt)).all()})
    return counts


async def quarantined_count(*, session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(QuarantinedEvent))).scalar_one())


async def push_near_expiry(*, session: AsyncSession, now: datetime, within: timedelta) -> dict[str, int]:
    """Push channels/subscriptions expiring within `within` (or already expired), by kind."""
    link = CalendarLink
    stmt = (
        select(link.push_kind, func.count())
        .where(link.push_kind.is_not(None), link.push_expires_at < now + within)
        .group_by(link.push_kind)
    )
    return {str(kind): int(n) for kind, n in (await session.execute(stmt)).all()}


async def summary(*, session: AsyncSession, now: datetime, limit: int = CALENDAR_PAGE) -> Summary:
    """The whole operator summary (a handful of aggregate queries)."""
    return Summary(
        generated_at=now,
        connections=await connection_counts(session=session),
        calendars=await calendar_rows(session=session, limit=limit),
        calendars_total=await calendar_count(session=session),
        outbox=await outbox_backlog(session=session),
        deliveries=await delivery_counts(session=session),
        quarantined=await quarantined_count(session=session),
    )


async def resource_counts(*, session: AsyncSession, resource_id: str) -> dict[str, int]:
    """How much one resource has: busy rows, appointments, and appointments written to a calendar."""
    written = (
        select(func.count())
        .select_from(AppointmentEvent)
        .join(Appointment, Appointment.id == AppointmentEvent.appointment_id)
        .where(Appointment.resource_id == resource_id, AppointmentEvent.provider_event_id.is_not(None))
    )
    stmt = select(
        select(func.count()).where(Unavailability.resource_id == resource_id).scalar_subquery(),
        select(func.count()).where(Appointment.resource_id == resource_id).scalar_subquery(),
        written.scalar_subquery(),
    )
    busy, appointments, events = (await session.execute(stmt)).one()
    return {"unavailability": int(busy), "appointments": int(appointments), "written": int(events)}
