"""Appointments (versioned upsert) and appointment_events (which provider event holds one).

The version only grows: an upsert with a version older than or equal to the stored one
changes nothing. An appointment_events row is written *before* a create is sent ("pinned",
no provider event id yet) so a retried create goes to the same calendar even if the
resource's write calendar changed meanwhile: events stay where they were written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.tables import Appointment, AppointmentEvent, CalendarLink, ExternalCalendar, Resource, WriteOutbox


@dataclass(frozen=True, slots=True)
class AppointmentFields:
    """What the main API says about one appointment at one version."""

    id: str
    resource_id: str
    start_at: datetime
    end_at: datetime
    status: str  # "confirmed" | "cancelled"
    title: str
    version: int
    description: str | None = None
    location: str | None = None
    attendees: tuple[str, ...] = ()


async def upsert(*, session: AsyncSession, fields: AppointmentFields) -> bool:
    """Store the appointment unless the stored version is newer or equal; True if stored."""
    values = {
        "id": fields.id,
        "resource_id": fields.resource_id,
        "start_at": fields.start_at,
        "end_at": fields.end_at,
        "status": fields.status,
        "title": fields.title,
        "description": fields.description,
        "location": fields.location,
        "attendees": list(fields.attendees),
        "version": fields.version,
    }
    stmt = insert(Appointment).values(**values)
    upserted = stmt.on_conflict_do_update(
        index_elements=[Appointment.id],
        set_={k: stmt.excluded[k] for k in values if k != "id"},
        where=Appointment.version < stmt.excluded.version,
    ).returning(Appointment.id)
    return (await session.execute(upserted)).first() is not None


async def get_appointment(*, session: AsyncSession, appointment_id: str) -> Appointment | None:
    return await session.get(Appointment, appointment_id, populate_existing=True)


async def company_of_appointment(*, session: AsyncSession, appointment_id: str) -> str | None:
    """The company owning the appointment's resource (None for an unknown appointment)."""
    stmt = (
        select(Resource.company_id)
        .join(Appointment, Appointment.resource_id == Resource.id)
        .where(Appointment.id == appointment_id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def cancel(*, session: AsyncSession, appointment_id: str, resource_id: str) -> Appointment | None:
    """Mark a stored appointment cancelled at version + 1 (DELETE without a body)."""
    stmt = (
        update(Appointment)
        .where(Appointment.id == appointment_id, Appointment.resource_id == resource_id)
        .values(status="cancelled", version=Appointment.version + 1)
        .returning(Appointment)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


@dataclass(frozen=True, slots=True)
class WriteState:
    """An appointment with where its event is and what the outbox still has to do."""

    appointment: Appointment
    event: AppointmentEvent | None
    calendar_id: str | None
    outbox: WriteOutbox | None


async def write_state(*, session: AsyncSession, appointment_id: str, resource_id: str) -> WriteState | None:
    """The appointment of this resource, its event row and its outbox entry, if any."""
    stmt = (
        select(Appointment, AppointmentEvent, CalendarLink.calendar_id, WriteOutbox)
        .outerjoin(AppointmentEvent, AppointmentEvent.appointment_id == Appointment.id)
        .outerjoin(CalendarLink, CalendarLink.id == AppointmentEvent.link_id)
        .outerjoin(WriteOutbox, WriteOutbox.appointment_id == Appointment.id)
        .where(Appointment.id == appointment_id, Appointment.resource_id == resource_id)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else WriteState(row[0], row[1], row[2], row[3])


# --- what the write job needs -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """A calendar an appointment's event lives on or goes to, with its connection."""

    link: CalendarLink
    connection: ExternalCalendar


@dataclass(frozen=True, slots=True)
class WritePlan:
    """Everything one write needs, read in one go: appointment, event row, calendars."""

    appointment: Appointment
    timezone: str
    event: AppointmentEvent | None
    pinned: Target | None  # the calendar of the event row, if one exists
    write: Target | None  # the resource's current write calendar, if any


async def write_plan(*, session: AsyncSession, appointment_id: str) -> WritePlan | None:
    """The appointment's state and both candidate calendars (None if the appointment is gone)."""
    stmt = (
        select(Appointment, Resource.timezone, AppointmentEvent)
        .join(Resource, Resource.id == Appointment.resource_id)
        .outerjoin(AppointmentEvent, AppointmentEvent.appointment_id == Appointment.id)
        .where(Appointment.id == appointment_id)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        return None
    appointment, timezone, event = row[0], row[1], row[2]
    pinned = await _target(session, CalendarLink.id == event.link_id) if event is not None else None
    write = await _target(session, and_(CalendarLink.resource_id == appointment.resource_id, CalendarLink.write))
    return WritePlan(appointment, timezone, event, pinned, write)


async def _target(session: AsyncSession, where: object) -> Target | None:
    stmt = (
        select(CalendarLink, ExternalCalendar)
        .join(ExternalCalendar, ExternalCalendar.id == CalendarLink.connection_id)
        .where(where)  # type: ignore[arg-type]
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else Target(row[0], row[1])


async def pin(*, session: AsyncSession, appointment_id: str, link_id: int) -> None:
    """Record the calendar a create is about to go to (no provider id yet); replaces a deleted event's row."""
    stmt = insert(AppointmentEvent).values(appointment_id=appointment_id, link_id=link_id)
    stmt = stmt.on_conflict_do_update(
        index_elements=[AppointmentEvent.appointment_id],
        set_={"link_id": link_id, "provider_event_id": None, "etag": None, "written_version": None, "deleted": False},
    )
    await session.execute(stmt)


async def record_written(
    *, session: AsyncSession, appointment_id: str, link_id: int, provider_event_id: str, etag: str | None, version: int
) -> None:
    """The provider holds the appointment at `version` as this event."""
    stmt = insert(AppointmentEvent).values(
        appointment_id=appointment_id,
        link_id=link_id,
        provider_event_id=provider_event_id,
        etag=etag,
        written_version=version,
        deleted=False,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[AppointmentEvent.appointment_id],
        set_={
            "link_id": link_id,
            "provider_event_id": provider_event_id,
            "etag": etag,
            "written_version": version,
            "deleted": False,
        },
    )
    await session.execute(stmt)


async def record_deleted(*, session: AsyncSession, appointment_id: str, version: int) -> None:
    """The appointment's event is gone from the provider (cancelled at `version`)."""
    await session.execute(
        update(AppointmentEvent)
        .where(AppointmentEvent.appointment_id == appointment_id)
        .values(deleted=True, written_version=version, etag=None)
    )


async def unpin(*, session: AsyncSession, appointment_id: str) -> None:
    """Forget a pin whose create certainly did not happen (the provider refused it)."""
    await session.execute(
        delete(AppointmentEvent).where(
            AppointmentEvent.appointment_id == appointment_id, AppointmentEvent.provider_event_id.is_(None)
        )
    )


async def forget_event(*, session: AsyncSession, appointment_id: str) -> None:
    """Drop the event row (its event was removed from a calendar the appointment left)."""
    await session.execute(delete(AppointmentEvent).where(AppointmentEvent.appointment_id == appointment_id))


async def written_events(*, session: AsyncSession, resource_ids: Sequence[str]) -> list[AppointmentEvent]:
    """Live event rows of these resources' appointments (for checks and benchmarks)."""
    stmt = (
        select(AppointmentEvent)
        .join(Appointment, Appointment.id == AppointmentEvent.appointment_id)
        .where(Appointment.resource_id.in_(list(resource_ids)), AppointmentEvent.deleted.is_(False))
    )
    return list((await session.execute(stmt)).scalars())
