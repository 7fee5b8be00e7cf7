"""external_calendars: pending → active → reauth_required; encrypted tokens; OAuth state.

Tokens arrive and leave here already encrypted: this module never sees plaintext. An OAuth
state is stored only as its SHA-256 and is consumed once, under a row lock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
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


def state_hash(state: str) -> str:
    """The stored form of an OAuth state: its SHA-256, so a database dump cannot replay it."""
    return hashlib.sha256(state.encode()).hexdigest()


async def create_pending(*, session: AsyncSession, resource_id: str, provider: str) -> ExternalCalendar:
    """A new connection waiting for the resource's consent."""
    connection = ExternalCalendar(resource_id=resource_id, provider=provider, status="pending")
    session.add(connection)
    await session.flush()
    await session.refresh(connection)  # load server defaults (created_at) while in the transaction
    return connection


async def set_auth_request(
    *, session: AsyncSession, connection_id: int, state_hash: str, pkce_verifier_enc: str, expires_at: datetime
) -> None:
    """Remember the hash of a fresh state and its PKCE verifier; any earlier authUrl stops working."""
    stmt = (
        update(ExternalCalendar)
        .where(ExternalCalendar.id == connection_id)
        .values(oauth_state_hash=state_hash, pkce_verifier_enc=pkce_verifier_enc, auth_url_expires_at=expires_at)
    )
    await session.execute(stmt)


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """A consumed OAuth state: the connection it names and the PKCE verifier to redeem the code."""

    connection_id: int
    resource_id: str
    provider: str
    pkce_verifier_enc: str | None
    account_email: str | None


class StateRefused(Exception):
    """The state is unknown (forged, tampered or already used) or expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "unknown" | "expired"


async def consume_state(*, session: AsyncSession, state_hash: str, now: datetime) -> AuthRequest:
    """Take the state for one use (row lock, then clear it); StateRefused if unknown or expired.

    The row lock makes two callbacks with the same state race for one row: the loser re-reads
    it after the winner commits, finds the hash cleared and is refused.
    """
    stmt = select(ExternalCalendar).where(ExternalCalendar.oauth_state_hash == state_hash).with_for_update()
    connection = (await session.execute(stmt)).scalar_one_or_none()
    if connection is None:
        raise StateRefused("unknown")
    expires = connection.auth_url_expires_at
    if expires is None or expires <= now:
        raise StateRefused("expired")
    c = connection
    request = AuthRequest(c.id, c.resource_id, c.provider, c.pkce_verifier_enc, c.account_email)
    clear = {"oauth_state_hash": None, "pkce_verifier_enc": None, "auth_url_expires_at": None}
    await session.execute(update(ExternalCalendar).where(ExternalCalendar.id == connection.id).values(**clear))
    return request


async def record_error(*, session: AsyncSession, connection_id: int, error: str) -> None:
    """Note why the last connect attempt failed (shown in GET externalCalendars)."""
    stmt = update(ExternalCalendar).where(ExternalCalendar.id == connection_id).values(last_error=error[:2000])
    await session.execute(stmt)


async def activate(
    *,
    session: AsyncSession,
    connection_id: int,
    account_email: str,
    refresh_token_enc: str,
    access_token_enc: str,
    expires_at: datetime,
    now: datetime,
) -> bool:
    """Store the grant, mark the connection active and tell the main API; False if it is gone."""
    stmt = (
        update(ExternalCalendar)
        .where(ExternalCalendar.id == connection_id)
        .values(
            status="active",
            account_email=account_email,
            refresh_token_enc=refresh_token_enc,
            access_token_enc=access_token_enc,
            access_token_expires_at=expires_at,
            last_error=None,
            connected_at=now,
        )
        .returning(ExternalCalendar.resource_id, ExternalCalendar.provider)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        return False
    company_id = await company_of_resource(session=session, resource_id=row.resource_id)
    if company_id is not None:
        obj = {"externalCalendarId": connection_id, "provider": row.provider, "calendarEmail": account_email}
        await enqueue_event(
            session=session,
            company_id=company_id,
            event_type="externalCalendar.active",
            resource_id=row.resource_id,
            obj=obj,
            now=now,
        )
    return True


async def delete_connection(*, session: AsyncSession, connection_id: int) -> bool:
    """Delete a connection; its links, unavailability and push records go with it (CASCADE)."""
    result = await session.execute(delete(ExternalCalendar).where(ExternalCalendar.id == connection_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]
