"""/v3/resource/{id}/externalCalendar(s)…: connect, regenerate, show, list, select, disconnect.

Handlers verify the token and the company, validate, and record; provider I/O (listing a
Google account's calendars, revoking a grant) runs in jobs/connect.py under a deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from jobs import connect, push
from providers import errors as provider_errors
from providers.base import CalendarInfo
from worker import cache
from worker.api.auth import verify_company, verify_token
from worker.api.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from worker.api.keys import DEPS
from worker.api.schemas_calendars import (
    CreateConnection,
    ListCalendars,
    Select,
    connection_json,
    parse,
    read_json,
)
from worker.db import connections as repo
from worker.db import outbox, selection
from worker.db.links import request_sync
from worker.db.tables import ExternalCalendar, Resource
from worker.deps import Deps
from worker.wakeups import OUTBOX, wake

routes = web.RouteTableDef()

BASE = "/v3/resource/{id}"
MAX_ID = 2**63 - 1  # external_calendars.id is a BIGINT
RESOURCE_ID_MAX = 64  # resources.id is VARCHAR(64)


def _connection_id(raw: str | None) -> int:
    """A path or query id; anything that is not a BIGINT cannot name a connection (404)."""
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > MAX_ID:
        raise NotFound("external calendar not found", code="external_calendar_not_found")
    return int(raw)


async def path_resource(request: web.Request, session: AsyncSession) -> Resource:
    """The path's resource (`{id}`) after verifyToken and verifyCompany (401 / 404)."""
    resource_id = request.match_info["id"]
    if len(resource_id) > RESOURCE_ID_MAX or not resource_id.isprintable():
        # Cannot name a resource (and PostgreSQL refuses NUL in text): 404 after the token check.
        verify_token(request)
        raise NotFound("resource not found", code="resource_not_found")
    return await verify_company(request, session, resource_id)


async def _owned(session: AsyncSession, resource: Resource, connection_id: int) -> ExternalCalendar:
    connection = await repo.get_connection(session=session, connection_id=connection_id)
    if connection is None or connection.resource_id != resource.id:
        raise NotFound(f"external calendar {connection_id} not found", code="external_calendar_not_found")
    return connection


async def _with_auth_link(deps: Deps, session: AsyncSession, connection: ExternalCalendar) -> dict[str, Any]:
    try:
        link = await connect.new_auth_link(deps, session=session, connection=connection)
    except connect.NotConfigured as exc:
        raise ServiceUnavailable(str(exc), code="provider_not_configured") from None
    links = await selection.links_of(session=session, connection_id=connection.id)
    body = connection_json(connection, links)
    return {**body, "authUrl": link.url, "authUrlExpiresAt": link.expires_at.isoformat()}


@routes.post(BASE + "/externalCalendar")
async def create_connection(request: web.Request) -> web.Response:
    """Start connecting a Google or Outlook account: a pending connection and its authUrl."""
    deps = request.app[DEPS]
    async with deps.sessions.begin() as session:
        resource = await path_resource(request, session)
        body = parse(CreateConnection, await read_json(request))
        connection = await repo.create_pending(session=session, resource_id=resource.id, provider=body.provider)
        answer = await _with_auth_link(deps, session, connection)
    return web.json_response(answer, status=201)


@routes.put(BASE + "/externalCalendar/{externalCalendarId}/regenerateAuthUrl")
async def regenerate_auth_url(request: web.Request) -> web.Response:
    """A fresh authUrl (the previous one stops working); how reauth_required recovers."""
    deps = request.app[DEPS]
    async with deps.sessions.begin() as session:
        resource = await path_resource(request, session)
        connection = await _owned(session, resource, _connection_id(request.match_info["externalCalendarId"]))
        answer = await _with_auth_link(deps, session, connection)
    return web.json_response(answer)


@routes.get(BASE + "/externalCalendars")
async def list_connections(request: web.Request) -> web.Response:
    """Every connection of the resource, pending and active, with calendars and sync health."""
    async with request.app[DEPS].sessions.begin() as session:
        resource = await path_resource(request, session)
        connections = await repo.connections_of(session=session, resource_id=resource.id)
        links = await selection.links_of_resource(session=session, resource_id=resource.id)
        writes = await outbox.states_of(session=session, resource_id=resource.id)
    shown = [connection_json(c, [link for link in links if link.connection_id == c.id]) for c in connections]
    # Appointments waiting for a write calendar (or refused by one) stay visible here.
    pending = {"pending": writes.get("pending", 0), "waitingCalendar": writes.get("waiting_calendar", 0)}
    return web.json_response(
        {"externalCalendars": shown, "appointmentWrites": {**pending, "failed": writes.get("failed", 0)}}
    )


async def _google_connection(session: AsyncSession, resource: Resource, connection_id: int | None) -> ExternalCalendar:
    """The named connection, or the resource's only Google one; it must be active Google."""
    if connection_id is not None:
        connection = await _owned(session, resource, connection_id)
    else:
        connections = await repo.connections_of(session=session, resource_id=resource.id)
        google = [c for c in connections if c.provider == "google"]
        if len(google) > 1:
            raise BadRequest(
                "several Google accounts are connected: name one with externalCalendarId",
                code="external_calendar_required",
            )
        if not google:
            raise NotFound("no Google account is connected to this resource", code="external_calendar_not_found")
        connection = google[0]
    if connection.provider != "google":
        raise BadRequest("Outlook connections use the primary calendar only", code="primary_only")
    if connection.status == "pending":
        raise Conflict("the connection is pending: finish the consent at its authUrl first", code="pending")
    if connection.status != "active":
        raise Conflict(
            f"the connection is {connection.status}: regenerate its authUrl and consent again",
            code=connection.status,
        )
    return connection


async def _calendars(deps: Deps, connection: ExternalCalendar) -> list[CalendarInfo]:
    """The account's calendars from the provider, within the interactive deadline."""
    try:
        async with asyncio.timeout(connect.interactive_deadline(deps.settings)):
            return await connect.list_calendars(deps, connection)
    except provider_errors.ReauthRequiredError:
        async with deps.sessions.begin() as session:
            await repo.mark_reauth_required(
                session=session, connection_id=connection.id, reason="invalid_grant", now=deps.clock.now()
            )
        raise Conflict(
            "the provider revoked access: regenerate the authUrl and consent again", code="reauth_required"
        ) from None
    except (provider_errors.ProviderError, TimeoutError) as exc:
        raise ServiceUnavailable(
            f"the provider could not list calendars ({type(exc).__name__}); try again", code="provider_unavailable"
        ) from None


def _calendar_entry(info: CalendarInfo, linked: dict[str, Any]) -> dict[str, Any]:
    link = linked.get(info.id)
    return {
        "id": info.id,
        "summary": info.name,
        "primary": info.primary,
        "accessRole": info.access_role,
        "read": bool(link and link.read),
        "write": bool(link and link.write),
    }


async def _named_in_query(request: web.Request) -> int | None:
    raw = request.query.get("externalCalendarId")
    return _connection_id(raw) if raw is not None else None


async def _named_in_body(request: web.Request) -> int | None:
    named = parse(ListCalendars, await read_json(request, optional=True)).external_calendar_id
    return named if named is not None else await _named_in_query(request)


async def _named_in_path(request: web.Request) -> int | None:
    return _connection_id(request.match_info["externalCalendarId"])


async def _not_named(request: web.Request) -> int | None:
    return None


# Where a route takes the connection id from; read only after the resource is verified.
IdSource = Callable[[web.Request], Awaitable[int | None]]


async def _list_calendars(request: web.Request, named: IdSource) -> web.Response:
    deps = request.app[DEPS]
    async with deps.sessions.begin() as session:
        resource = await path_resource(request, session)
        connection = await _google_connection(session, resource, await named(request))
        links = await selection.links_of(session=session, connection_id=connection.id)
    calendars = await _calendars(deps, connection)
    linked = {link.calendar_id: link for link in links}
    entries = [_calendar_entry(c, linked) for c in calendars]
    return web.json_response({"externalCalendarId": connection.id, "calendars": entries})


@routes.get(BASE + "/externalCalendars/list")
async def list_calendars_get(request: web.Request) -> web.Response:
    """The Google account's calendars (externalCalendarId in the query when several)."""
    return await _list_calendars(request, _named_in_query)


@routes.post(BASE + "/externalCalendars/list")
async def list_calendars_post(request: web.Request) -> web.Response:
    """The same as GET; externalCalendarId may also come in an optional JSON body."""
    return await _list_calendars(request, _named_in_body)


def _choices(body: Select, calendars: list[CalendarInfo]) -> list[selection.Choice]:
    """The selection as links; every id must be one of the account's calendars."""
    known = {c.id: c for c in calendars}
    wanted = [*body.read_calendar_ids, *([body.write_calendar_id] if body.write_calendar_id else [])]
    unknown = [i for i in wanted if i not in known]
    if unknown:
        raise BadRequest(f"not calendars of this account: {unknown[:5]}", code="unknown_calendar")
    if body.write_calendar_id and not known[body.write_calendar_id].can_write:
        raise BadRequest("the write calendar is read-only for this account", code="calendar_read_only")
    reads = set(body.read_calendar_ids)
    return [
        selection.Choice(i, known[i].name, known[i].primary, read=i in reads, write=i == body.write_calendar_id)
        for i in dict.fromkeys(wanted)
    ]


async def _select(request: web.Request, named: IdSource) -> web.Response:
    deps = request.app[DEPS]
    async with deps.sessions.begin() as session:
        resource = await path_resource(request, session)
        connection = await _google_connection(session, resource, await named(request))
    body = parse(Select, await read_json(request))
    choices = _choices(body, await _calendars(deps, connection))
    now = deps.clock.now()
    try:
        async with deps.sessions.begin() as session:
            connection = await _owned(session, resource, connection.id)
            applied = await selection.apply_selection(
                session=session, connection_id=connection.id, resource_id=resource.id, choices=choices
            )
            if applied.new_read_link_ids:
                await request_sync(session=session, now=now, link_ids=applied.new_read_link_ids, interactive=True)
            links = await selection.links_of(session=session, connection_id=connection.id)
            # A (new) write calendar: writes a former calendar refused get another chance there.
            retried = (
                await outbox.retry_failed(session=session, resource_id=resource.id, now=now)
                if any(link.write for link in links)
                else 0
            )
    except IntegrityError:  # another write calendar was set by a concurrent request
        message = "the resource's calendars changed at the same time; try again"
        raise Conflict(message, code="concurrent_change") from None
    if applied.busy_rows_removed:
        await cache.purge(deps.redis, deps.prefix, [resource.id])
    if applied.new_read_link_ids:
        await wake(deps.redis, deps.prefix)
    if retried:
        await wake(deps.redis, deps.prefix, OUTBOX)
    for gone in applied.removed_links:  # their channels/subscriptions would outlive them
        if gone.push_id is not None:
            deps.tasks.spawn(push.stop_push(deps, gone, connection), name="push.stop")
    return web.json_response(connection_json(connection, links))


@routes.post(BASE + "/externalCalendars/select")
async def select_calendars(request: web.Request) -> web.Response:
    """Choose the read calendars and the write calendar of the resource's only Google account."""
    return await _select(request, _not_named)


@routes.post(BASE + "/externalCalendars/{externalCalendarId}/select")
async def select_calendars_of(request: web.Request) -> web.Response:
    """Choose the read calendars and the write calendar of one Google connection."""
    return await _select(request, _named_in_path)


@routes.delete(BASE + "/externalCalendar/{externalCalendarId}")
async def delete_connection(request: web.Request) -> web.Response:
    """Disconnect: rows go now; push stop and grant revocation follow in the background."""
    deps = request.app[DEPS]
    async with deps.sessions.begin() as session:
        resource = await path_resource(request, session)
        connection = await _owned(session, resource, _connection_id(request.match_info["externalCalendarId"]))
    if not await connect.disconnect(deps, connection.id):
        raise NotFound(f"external calendar {connection.id} not found", code="external_calendar_not_found")
    return web.Response(status=204)
