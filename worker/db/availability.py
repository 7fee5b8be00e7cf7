"""Read queries behind GET /v3/availability: busy rows, confirmed appointments, link freshness."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.tables import Appointment, AppointmentEvent, CalendarLink, Company, ExternalCalendar, Unavailability
from worker.freshness import LinkState

_CALENDAR = (CalendarLink.calendar_id, ExternalCalendar.provider)


async def busy_rows(*, session: AsyncSession, resource_id: str, start: datetime, end: datetime) -> Sequence[Any]:
    """Unavailability rows of the resource overlapping [start, end), with their calendar."""
    stmt = (
        select(Unavailability.id, Unavailability.start_at, Unavailability.end_at, Unavailability.link_id, *_CALENDAR)
        .join(CalendarLink, CalendarLink.id == Unavailability.link_id)
        .join(ExternalCalendar, ExternalCalendar.id == CalendarLink.connection_id)
        .where(Unavailability.resource_id == resource_id, Unavailability.start_at < end, Unavailability.end_at > start)
    )
    return (await session.execute(stmt)).all()


async def confirmed_appointments(
    *, session: AsyncSession, resource_id: str, start: datetime, end: datetime
) -> Sequence[Any]:
    """Confirmed appointments of the resource overlapping [start, end)."""
    stmt = select(Appointment.id, Appointment.start_at, Appointment.end_at).where(
        Appointment.resource_id == resource_id,
        Appointment.status == "confirmed",
        Appointment.start_at < end,
        Appointment.end_at > start,
    )
    return (await session.execute(stmt)).all()


async def read_links(*, session: AsyncSession, resource_id: str) -> list[LinkState]:
    """Freshness inputs of every read calendar of the resource, ordered by link id."""
    stmt = (
        select(CalendarLink, ExternalCalendar.provider, ExternalCalendar.status)
        .join(ExternalCalendar, ExternalCalendar.id == CalendarLink.connection_id)
        .where(CalendarLink.resource_id == resource_id, CalendarLink.read)
        .order_by(CalendarLink.id)
    )
    return [_link_state(link, provider, status) for link, provider, status in (await session.execute(stmt)).all()]


def _link_state(link: CalendarLink, provider: str, status: str) -> LinkState:
    return LinkState(
        link_id=link.id,
        calendar_id=link.calendar_id,
        name=link.name,
        provider=provider,
        connection_status=status,
        last_synced_at=link.last_synced_at,
        consecutive_failures=link.consecutive_failures,
        last_error=link.last_error,
        sync_requested_at=link.sync_requested_at,
        push_kind=link.push_kind,
        push_expires_at=link.push_expires_at,
        push_error=link.push_error,
        window_start=link.window_start,
        window_end=link.window_end,
    )


async def company_settings(*, session: AsyncSession, company_id: str) -> dict[str, Any]:
    """The company's settings JSON ({} when absent)."""
    value = await session.scalar(select(Company.settings).where(Company.id == company_id))
    return dict(value or {})


async def unavailability_at(*, session: AsyncSession, resource_id: str, at: datetime) -> Sequence[Any]:
    """Every unavailability row of the resource covering the instant, with its calendar."""
    stmt = (
        select(Unavailability, *_CALENDAR)
        .join(CalendarLink, CalendarLink.id == Unavailability.link_id)
        .join(ExternalCalendar, ExternalCalendar.id == CalendarLink.connection_id)
        .where(Unavailability.resource_id == resource_id, Unavailability.start_at <= at, Unavailability.end_at > at)
        .order_by(Unavailability.start_at, Unavailability.id)
    )
    return (await session.execute(stmt)).all()


async def appointments_at(*, session: AsyncSession, resource_id: str, at: datetime) -> Sequence[Any]:
    """Confirmed appointments covering the instant, with the write-calendar event holding each."""
    stmt = (
        select(Appointment, AppointmentEvent.link_id, AppointmentEvent.provider_event_id)
        .outerjoin(AppointmentEvent, AppointmentEvent.appointment_id == Appointment.id)
        .where(
            Appointment.resource_id == resource_id,
            Appointment.status == "confirmed",
            Appointment.start_at <= at,
            Appointment.end_at > at,
        )
        .order_by(Appointment.start_at, Appointment.id)
    )
    return (await session.execute(stmt)).all()
