"""POST /v3/resource and DELETE /v3/resource/{id}: resources for standalone runs and the demo.

In production the main API owns resources. Removing one first disconnects each of its
external calendars exactly as DELETE externalCalendar does, so no grant outlives it.
"""

from __future__ import annotations

import uuid

from aiohttp import web
from sqlalchemy.exc import IntegrityError

from jobs import connect
from worker.api.auth import verify_token
from worker.api.calendars import path_resource
from worker.api.errors import Conflict
from worker.api.keys import DEPS
from worker.api.schemas_calendars import CreateResource, parse, read_json, resource_json
from worker.db.resources import create_resource, get_resource

routes = web.RouteTableDef()


@routes.post("/v3/resource")
async def create(request: web.Request) -> web.Response:
    """Create a resource of the caller's company (201); an id in use is a 409."""
    caller = verify_token(request)
    body = parse(CreateResource, await read_json(request))
    resource_id = body.id or uuid.uuid4().hex
    deps = request.app[DEPS]
    try:
        async with deps.sessions.begin() as session:
            if await get_resource(session=session, resource_id=resource_id) is not None:
                raise Conflict(f"resource {resource_id} already exists", code="resource_exists")
            resource = await create_resource(
                session=session,
                resource_id=resource_id,
                company_id=caller.company_id,
                name=body.name,
                timezone=body.timezone,
            )
    except IntegrityError:  # created by a concurrent request between the check and the insert
        raise Conflict(f"resource {resource_id} already exists", code="resource_exists") from None
    return web.json_response(resource_json(resource), status=201)


@routes.delete("/v3/resource/{id}")
async def remove(request: web.Request) -> web.Response:
    """Delete a resource of the caller's company after disconnecting its calendars (204)."""
    deps = request.app[DEPS]
    async with deps.sessions.begin() as session:
        resource = await path_resource(request, session)
    try:
        await connect.remove_resource(deps, resource.id)
    except IntegrityError:  # a calendar was connected while we removed the others
        raise Conflict("the resource gained a connection meanwhile; try again", code="resource_busy") from None
    return web.Response(status=204)
