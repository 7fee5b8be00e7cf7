"""The database itself refuses what DESIGN.md says must never be stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import make_connection, make_link, make_resource
from worker.db.tables import Appointment, CalendarLink, ExternalCalendar, Resource, Unavailability

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


async def _add(sessions: async_sessionmaker[AsyncSession], row: object) -> None:
    async with sessions() as session, session.begin():
        session.add(row)


async def test_one_write_calendar_per_resource(sessions: async_sessionmaker[AsyncSession]) -> None:
    resource = await make_resource(sessions)
    conn = await make_connection(sessions, resource=resource)
    await make_link(sessions, connection=conn, calendar_id="a", write=True)
    await make_link(sessions, connection=conn, calendar_id="b", read=True)
    with pytest.raises(IntegrityError, match="uq_calendar_links_one_write"):
        await make_link(sessions, connection=conn, calendar_id="c", write=True)


async def test_unavailability_unique_per_link_and_end_after_start(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resource = await make_resource(sessions)
    link = await make_link(sessions, connection=await make_connection(sessions, resource=resource))
    row = dict(resource_id=resource.id, link_id=link.id, provider_event_id="e1")
    await _add(sessions, Unavailability(**row, start_at=T0, end_at=T0 + timedelta(hours=1)))
    with pytest.raises(IntegrityError, match="pk_unavailability"):
        await _add(sessions, Unavailability(**row, start_at=T0, end_at=T0 + timedelta(hours=2)))
    with pytest.raises(IntegrityError, match="end_after_start"):
        await _add(sessions, Unavailability(**{**row, "provider_event_id": "e2"}, start_at=T0, end_at=T0))


async def test_appointment_checks(sessions: async_sessionmaker[AsyncSession]) -> None:
    resource = await make_resource(sessions)
    base = dict(resource_id=resource.id, start_at=T0, end_at=T0 + timedelta(hours=1), version=1)
    with pytest.raises(IntegrityError, match="ck_appointments_status"):
        await _add(sessions, Appointment(id="a1", status="maybe", **base))
    with pytest.raises(IntegrityError, match="end_after_start"):
        await _add(sessions, Appointment(id="a2", status="confirmed", **{**base, "end_at": T0}))


async def test_unknown_provider_and_status_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    resource = await make_resource(sessions)
    with pytest.raises(IntegrityError, match="ck_external_calendars_provider"):
        await make_connection(sessions, resource=resource, provider="yahoo")
    with pytest.raises(IntegrityError, match="ck_external_calendars_status"):
        await make_connection(sessions, resource=resource, status="weird")


async def test_resource_with_connections_cannot_be_deleted_but_links_cascade(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resource = await make_resource(sessions)
    conn = await make_connection(sessions, resource=resource)
    link = await make_link(sessions, connection=conn)
    with pytest.raises(IntegrityError, match="fk_external_calendars_resource_id_resources"):
        async with sessions() as session, session.begin():
            await session.delete(await session.get(Resource, resource.id))
    async with sessions() as session, session.begin():
        await session.delete(await session.get(ExternalCalendar, conn.id))
    async with sessions() as session:
        assert (await session.execute(select(CalendarLink).where(CalendarLink.id == link.id))).first() is None
