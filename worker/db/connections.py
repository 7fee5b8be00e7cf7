"""external_calendars: pending → active → reauth_required; encrypted tokens; OAuth state.

Tokens arrive and leave here already encrypted: this module never sees plaintext.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.notifications import company_of_resource, enqueue_event
from worker.db.tables import ExternalCalendar


async def get_connection(*, session: AsyncSession, connection_id: int) -> ExternalCalendar | None:
    return await session.get(ExternalCalendar, connection_id)


async def connections_of(*, session: AsyncSession, resource_id: str) -> list[ExternalCalendar]:
    """Every connection of a resource, oldest first."""
    stmt = select(ExternalCalendar).where(ExternalCalendar.resource_id == resource_id).order_by(ExternalCalendar.id)
    return list((await session.execute(stmt)).scalars())


async def store_tokens(
    *,
    session: AsyncSession,
    connection_id: int,
    access_token_enc: str,
    expires_at: datetime,
    refresh_token_enc: str | None = None,
) -> None:
    """Cache a fresh access token (and a rotated refresh token, when the provider rotated it)."""
    values: dict[str, object] = {"access_token_enc": access_token_enc, "access_token_expires_at": expires_at}
    if refresh_token_enc is not None:
        values["refresh_token_enc"] = refresh_token_enc
    await session.execute(update(ExternalCalendar).where(ExternalCalendar.id == connection_id).values(**values))


async def mark_reauth_required(*, session: AsyncSession, connection_id: int, reason: str, now: datetime) -> bool:
    """The grant is dead: stop using it until the resource re-authorises; tell the main API once."""
    stmt = (
        update(ExternalCalendar)
        .where(ExternalCalendar.id == connection_id, ExternalCalendar.status != "reauth_required")
        .values(status="reauth_required", last_error=reason, access_token_enc=None, access_token_expires_at=None)
        .returning(ExternalCalendar.resource_id, ExternalCalendar.provider, ExternalCalendar.account_email)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        return False
    company_id = await company_of_resource(session=session, resource_id=row.resource_id)
    if company_id is not None:
        obj = {"externalCalendarId": connection_id, "provider": row.provider, "calendarEmail": row.account_email}
        await enqueue_event(
            session=session,
            company_id=company_id,
            event_type="externalCalendar.reauthRequired",
            resource_id=row.resource_id,
            obj={**obj, "reason": reason},
            now=now,
        )
    return True
