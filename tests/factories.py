"""Factories that write real rows; each returns what it made."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from worker.db.resources import create_resource
from worker.db.tables import CalendarLink, ExternalCalendar, Resource


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


async def make_resource(
    sessions: async_sessionmaker[AsyncSession], *, company_id: str | None = None, timezone: str = "UTC", **kw: Any
) -> Resource:
    """A resource (and its company) committed to the database."""
    async with sessions() as session, session.begin():
        return await create_resource(
            session=session,
            resource_id=kw.pop("resource_id", new_id("res")),
            company_id=company_id or new_id("co"),
            timezone=timezone,
            **kw,
        )


async def make_connection(
    sessions: async_sessionmaker[AsyncSession], *, resource: Resource, provider: str = "google", **kw: Any
) -> ExternalCalendar:
    async with sessions() as session, session.begin():
        conn = ExternalCalendar(resource_id=resource.id, provider=provider, **kw)
        session.add(conn)
        await session.flush()
        return conn


async def make_link(
    sessions: async_sessionmaker[AsyncSession], *, connection: ExternalCalendar, calendar_id: str = "primary", **kw: Any
) -> CalendarLink:
    async with sessions() as session, session.begin():
        link = CalendarLink(
            connection_id=connection.id, resource_id=connection.resource_id, calendar_id=calendar_id, **kw
        )
        session.add(link)
        await session.flush()
        return link


SANDBOX_NAME = {"google": "google", "outlook": "microsoft"}  # our provider name → the sandbox's


@dataclass(frozen=True)
class SandboxAccount:
    """A sandbox user connected (active) to a new resource, its primary calendar linked."""

    email: str
    resource: Resource
    connection: ExternalCalendar
    link: CalendarLink


async def make_sandbox_account(
    deps: Any,
    sandbox: Any,
    provider: str,
    *,
    tag: str = "user",
    scope: str | None = None,
    timezone: str = "UTC",
    read: bool = True,
    write: bool = False,
) -> SandboxAccount:
    """Create the sandbox user, issue its tokens and store the connection as the OAuth flow would."""
    email = f"{tag}-{secrets.token_hex(5)}@calsync.test"
    user = await sandbox.control.create_user(SANDBOX_NAME[provider], email)
    issued = await sandbox.control.issue_tokens(SANDBOX_NAME[provider], email, scope)
    resource = await make_resource(deps.sessions, timezone=timezone)
    connection = await make_connection(
        deps.sessions,
        resource=resource,
        provider=provider,
        status="active",
        account_email=email,
        refresh_token_enc=deps.cipher.encrypt(issued["refresh_token"]),
    )
    calendar_id = next(c["id"] for c in user["calendars"] if c["primary"])
    link = await make_link(
        deps.sessions, connection=connection, calendar_id=calendar_id, read=read, write=write, primary=True
    )
    return SandboxAccount(email, resource, connection, link)
