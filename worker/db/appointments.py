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

from sqlalchemy import and_, delete, func, or_, select, text, update
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


async def owner_of(*, session: AsyncSession, appointment_id: str) -> tuple[str, str] | None:
    """(resource id, company id) of a stored appointment; None for an unknown one."""
    stmt = (
        select(Appointment.resource_id, Resource.company_id)
        .join(Resource, Resource.id == Appointment.resource_id)
        .where(Appointment.id == appointment_id)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0], row[1])


async def cancel(*, session: AsyncSession, appointment_id: str, resource_id: str) -> Appointment | None:
    """Mark a stored appointment cancelled at version + 1 (DELETE without a body)."""
    stmt = (
        update(Appointment)
        .where(Appointment.id == appointment_id, Appointment.resource_id == resource_id)
        .values(status="cancelled", version=Appointment.version + 1)
        .returning(Appointment)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


# What a main API that shares the database runs instead of calling PUT (docs/write.md quotes
# it; tests/jobs/test_write_shared_db.py runs it verbatim): the versioned upsert and the
# outbox entry in one statement, so both commit together or not at all. An older or equal
# version inserts nothing, so no outbox entry either.
MAIN_API_UPSERT = """
WITH stored AS (
    INSERT INTO appointments AS a
        (id, resource_id, start_at, end_at, status, title, description, location, attendees, version)
    VALUES
        (:id, :resource_id, :start_at, :end_at, :status, :title, :description, :location,
         CAST(:attendees AS jsonb), :version)
    ON CONFLICT (id) DO UPDATE SET
        resource_id = EXCLUDED.resource_id, start_at = EXCLUDED.start_at, end_at = EXCLUDED.end_at,
        status = EXCLUDED.status, title = EXCLUDED.title, description = EXCLUDED.description,
        location = EXCLUDED.location, attendees = EXCLUDED.attendees, version = EXCLUDED.version,
        updated_at = now()
    WHERE a.version < EXCLUDED.version
    RETURNING a.id, a.resource_id
)
INSERT INTO write_outbox AS o (appointment_id, resource_id, state, attempts, next_attempt_at, enqueued_at)
SELECT id, resource_id, 'pending', 0, now(), now() FROM stored
ON CONFLICT (appointment_id) DO UPDATE SET
    resource_id = EXCLUDED.resource_id, state = 'pending', attempts = 0,
    next_attempt_at = now(), last_error = NULL
"""


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


# --- what the write job needs (set-based: one statement per batch) ---------------------------


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


async def write_plans(*, session: AsyncSession, appointment_ids: Sequence[str]) -> dict[str, WritePlan]:
    """Each appointment's state and both candidate calendars (absent appointments are left out)."""
    stmt = (
        select(Appointment, Resource.timezone, AppointmentEvent)
        .join(Resource, Resource.id == Appointment.resource_id)
        .outerjoin(AppointmentEvent, AppointmentEvent.appointment_id == Appointment.id)
        .where(Appointment.id.in_(list(appointment_ids)))
    )
    rows = (await session.execute(stmt)).all()
    link_ids = {event.link_id for _, _, event in rows if event is not None}
    resource_ids = {appointment.resource_id for appointment, _, _ in rows}
    targets = await _targets(session, link_ids, resource_ids)
    writes = {t.link.resource_id: t for t in targets.values() if t.link.write}
    return {
        a.id: WritePlan(a, tz, event, targets.get(event.link_id) if event else None, writes.get(a.resource_id))
        for a, tz, event in rows
    }


async def _targets(session: AsyncSession, link_ids: set[int], resource_ids: set[str]) -> dict[int, Target]:
    """These links, and the write links of these resources, with their connections, by link id."""
    stmt = (
        select(CalendarLink, ExternalCalendar)
        .join(ExternalCalendar, ExternalCalendar.id == CalendarLink.connection_id)
        .where(
            or_(
                CalendarLink.id.in_(list(link_ids)),
                and_(CalendarLink.resource_id.in_(list(resource_ids)), CalendarLink.write),
            )
        )
    )
    return {link.id: Target(link, conn) for link, conn in (await session.execute(stmt)).all()}


async def pin(*, session: AsyncSession, pins: Sequence[tuple[str, int]]) -> None:
    """Record the calendar each create is about to go to, as (appointment id, link id), before sending it.

    The row has no provider id yet; a deleted event's row is replaced.
    """
    if not pins:
        return
    stmt = insert(AppointmentEvent).values([{"appointment_id": a, "link_id": link} for a, link in pins])
    stmt = stmt.on_conflict_do_update(
        index_elements=[AppointmentEvent.appointment_id],
        set_={
            "link_id": stmt.excluded.link_id,
            "provider_event_id": None,
            "etag": None,
            "written_version": None,
            "deleted": False,
        },
    )
    await session.execute(stmt)


@dataclass(frozen=True, slots=True)
class Written:
    """The provider holds the appointment at `version` as this event on this link."""

    appointment_id: str
    link_id: int
    provider_event_id: str
    etag: str | None
    version: int


async def record_written(*, session: AsyncSession, written: Sequence[Written]) -> None:
    """Store where each appointment's event is and which version it shows."""
    if not written:
        return
    stmt = insert(AppointmentEvent).values(
        [
            {
                "appointment_id": w.appointment_id,
                "link_id": w.link_id,
                "provider_event_id": w.provider_event_id,
                "etag": w.etag,
                "written_version": w.version,
                "deleted": False,
            }
            for w in written
        ]
    )
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[AppointmentEvent.appointment_id],
        set_={
            "link_id": excluded.link_id,
            "provider_event_id": excluded.provider_event_id,
            "etag": excluded.etag,
            "written_version": excluded.written_version,
            "deleted": False,
            "updated_at": func.now(),
        },
        # A stale writer (its lease expired mid-call) never records an older version over a newer one.
        where=or_(
            AppointmentEvent.written_version.is_(None),
            AppointmentEvent.deleted,
            AppointmentEvent.written_version <= excluded.written_version,
        ),
    )
    await session.execute(stmt)


_DELETED = text(
    """
UPDATE appointment_events e
SET deleted = true, written_version = v.version, etag = NULL, updated_at = now()
FROM unnest(CAST(:ids AS varchar[]), CAST(:versions AS bigint[])) AS v(appointment_id, version)
WHERE e.appointment_id = v.appointment_id
"""
)


async def record_deleted(*, session: AsyncSession, deleted: Sequence[tuple[str, int]]) -> None:
    """The events of these (appointment id, version) are gone from the provider."""
    if deleted:
        await session.execute(_DELETED, {"ids": [a for a, _ in deleted], "versions": [v for _, v in deleted]})


async def unpin(*, session: AsyncSession, appointment_ids: Sequence[str]) -> None:
    """Forget pins whose create certainly did not happen (the provider refused it)."""
    await session.execute(
        delete(AppointmentEvent).where(
            AppointmentEvent.appointment_id.in_(list(appointment_ids)), AppointmentEvent.provider_event_id.is_(None)
        )
    )


async def forget_events(*, session: AsyncSession, appointment_ids: Sequence[str]) -> None:
    """Drop event rows (their events were removed from calendars the appointments left)."""
    await session.execute(delete(AppointmentEvent).where(AppointmentEvent.appointment_id.in_(list(appointment_ids))))
