"""/v3/resource/{id}/appointments/{appointmentId}: record an appointment and its outbox entry.

PUT stores the appointment (versioned: an older or equal version is acknowledged and
ignored) and its outbox entry in one transaction, wakes the write job and answers 202; no
provider call happens here. DELETE cancels. GET shows the appointment and its write state.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    model_validator,
)
from sqlalchemy.ext.asyncio import AsyncSession

from worker import cache, wakeups
from worker.api import openapi
from worker.api.auth import verify_company
from worker.api.errors import BadRequest, Conflict, NotFound
from worker.api.keys import DEPS
from worker.db import appointments as repo
from worker.db import outbox
from worker.db.appointments import AppointmentFields, WriteState
from worker.db.tables import Appointment
from worker.deps import Deps

routes = web.RouteTableDef()
PATH = "/v3/resource/{id}/appointments/{appointmentId}"
MAX_VERSION = 2**63 - 1
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _text_only(value: Any) -> Any:
    """Times must be ISO 8601 strings on the wire (not numbers that pydantic would accept)."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 string with an offset")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_text_only)]
Email = Annotated[str, Field(max_length=320, pattern=EMAIL.pattern)]


class AppointmentIn(BaseModel):
    """The PUT body (camelCase on the wire; unknown fields are refused)."""

    model_config = ConfigDict(extra="forbid")

    start: Instant
    end: Instant
    status: Literal["confirmed", "cancelled"]
    title: str = Field(max_length=1000)
    description: str | None = Field(None, max_length=8000)
    location: str | None = Field(None, max_length=1000)
    attendees: list[Email] = Field(default_factory=list, max_length=100)
    version: StrictInt = Field(ge=0, le=MAX_VERSION)

    @model_validator(mode="after")
    def _ordered(self) -> AppointmentIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class CancelIn(BaseModel):
    """The optional DELETE body: the main API's version of the cancellation."""

    model_config = ConfigDict(extra="forbid")

    version: StrictInt | None = Field(None, ge=0, le=MAX_VERSION)


async def _json(request: web.Request, *, optional: bool = False) -> Any:
    if optional and not request.can_read_body:
        return {}
    try:
        return await request.json()
    except ValueError:
        raise BadRequest("body is not valid JSON", code="invalid_json") from None


def _invalid(exc: ValidationError) -> BadRequest:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "body"
    return BadRequest(f"{field}: {err['msg']}", code="invalid_request")


def _parse(model: type[AppointmentIn] | type[CancelIn], data: Any) -> Any:
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object", code="invalid_request")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _appointment_id(request: web.Request) -> str:
    value = request.match_info["appointmentId"]
    if not 1 <= len(value) <= 128:
        raise BadRequest("appointmentId must be 1 to 128 characters", code="invalid_request")
    return value


async def _previous_resource(session: AsyncSession, appointment_id: str, company_id: str) -> set[str]:
    """The resource the appointment was on; an id used by another company cannot be taken over."""
    owner = await repo.owner_of(session=session, appointment_id=appointment_id)
    if owner is None:
        return set()
    if owner[1] != company_id:
        raise Conflict(f"appointment {appointment_id} belongs to another company", code="appointment_conflict")
    return {owner[0]}


async def _announce(deps: Deps, resource_ids: set[str]) -> None:
    """Wake the write job and purge availability (the appointment blocks its slot)."""
    await wakeups.wake(deps.redis, deps.prefix, wakeups.OUTBOX)
    await cache.purge(deps.redis, deps.prefix, resource_ids)


def _fields(appointment_id: str, resource_id: str, body: AppointmentIn) -> AppointmentFields:
    return AppointmentFields(
        id=appointment_id,
        resource_id=resource_id,
        start_at=body.start.astimezone(UTC),
        end_at=body.end.astimezone(UTC),
        status=body.status,
        title=body.title,
        version=body.version,
        description=body.description,
        location=body.location,
        attendees=tuple(body.attendees),
    )


def _accepted(appointment_id: str, version: int, stored: bool) -> web.Response:
    body = {"appointmentId": appointment_id, "version": version, "ignored": not stored}
    return web.json_response(body, status=202 if stored else 200)


@routes.put(PATH)
async def put_appointment(request: web.Request) -> web.Response:
    """Record the appointment at its version and queue its write (202), or ignore an old version."""
    deps = request.app[DEPS]
    resource_id, appointment_id = request.match_info["id"], _appointment_id(request)
    async with deps.sessions.begin() as session:
        resource = await verify_company(request, session, resource_id)
        body: AppointmentIn = _parse(AppointmentIn, await _json(request))
        moved_from = await _previous_resource(session, appointment_id, resource.company_id)
        stored = await repo.upsert(session=session, fields=_fields(appointment_id, resource_id, body))
        if stored:
            await outbox.enqueue(
                session=session, appointment_id=appointment_id, resource_id=resource_id, now=_now(deps)
            )
    if stored:
        await _announce(deps, {resource_id} | moved_from)
    return _accepted(appointment_id, body.version, stored)


@routes.delete(PATH)
async def delete_appointment(request: web.Request) -> web.Response:
    """Cancel: at the given version, else at the stored version + 1 (a repeat changes nothing)."""
    deps = request.app[DEPS]
    resource_id, appointment_id = request.match_info["id"], _appointment_id(request)
    async with deps.sessions.begin() as session:
        await verify_company(request, session, resource_id)
        body: CancelIn = _parse(CancelIn, await _json(request, optional=True))
        current = await repo.get_appointment(session=session, appointment_id=appointment_id)
        if current is None or current.resource_id != resource_id:
            raise NotFound(f"appointment {appointment_id} not found", code="appointment_not_found")
        stored, version = await _cancel(session, current, body.version)
        if stored:
            await outbox.enqueue(
                session=session, appointment_id=appointment_id, resource_id=resource_id, now=_now(deps)
            )
    if stored:
        await _announce(deps, {resource_id})
    return _accepted(appointment_id, version, stored)


async def _cancel(session: AsyncSession, current: Appointment, version: int | None) -> tuple[bool, int]:
    """Store the cancellation; returns (stored, version it was asked at or given)."""
    if version is None:
        if current.status == "cancelled":
            return False, int(current.version)
        cancelled = await repo.cancel(session=session, appointment_id=current.id, resource_id=current.resource_id)
        return cancelled is not None, int(cancelled.version if cancelled else current.version)
    fields = AppointmentFields(
        id=current.id,
        resource_id=current.resource_id,
        start_at=current.start_at,
        end_at=current.end_at,
        status="cancelled",
        title=current.title,
        version=version,
        description=current.description,
        location=current.location,
        attendees=tuple(current.attendees),
    )
    return await repo.upsert(session=session, fields=fields), version


@routes.get(PATH)
async def get_appointment(request: web.Request) -> web.Response:
    """The appointment and its write state: pending, waiting_calendar, failed or written."""
    deps = request.app[DEPS]
    resource_id, appointment_id = request.match_info["id"], _appointment_id(request)
    async with deps.sessions.begin() as session:
        await verify_company(request, session, resource_id)
        state = await repo.write_state(session=session, appointment_id=appointment_id, resource_id=resource_id)
    if state is None:
        raise NotFound(f"appointment {appointment_id} not found", code="appointment_not_found")
    return web.json_response(render(state))


def render(state: WriteState) -> dict[str, Any]:
    """The wire form of an appointment with its write state."""
    a, event, entry = state.appointment, state.event, state.outbox
    write: dict[str, Any] = {
        "state": entry.state if entry is not None else "written",
        "attempts": entry.attempts if entry is not None else 0,
        "nextAttemptAt": _iso(entry.next_attempt_at) if entry is not None and entry.state == "pending" else None,
        "lastError": entry.last_error if entry is not None else None,
        "linkId": event.link_id if event is not None else None,
        "calendarId": state.calendar_id,
        "providerEventId": event.provider_event_id if event is not None and not event.deleted else None,
        "etag": event.etag if event is not None and not event.deleted else None,
        "writtenVersion": event.written_version if event is not None else None,
        "eventDeleted": bool(event.deleted) if event is not None else False,
    }
    return {
        "appointmentId": a.id,
        "resourceId": a.resource_id,
        "start": _iso(a.start_at),
        "end": _iso(a.end_at),
        "status": a.status,
        "title": a.title,
        "description": a.description,
        "location": a.location,
        "attendees": list(a.attendees),
        "version": a.version,
        "write": write,
    }


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _now(deps: Deps) -> datetime:
    return deps.clock.now()


# -- OpenAPI ---------------------------------------------------------------------------------

_PARAMS = [openapi.path_param("id"), openapi.path_param("appointmentId")]
_ACK = openapi.ref("AppointmentAck")
openapi.SCHEMAS["AppointmentIn"] = AppointmentIn.model_json_schema()
openapi.SCHEMAS["AppointmentAck"] = {
    "type": "object",
    "required": ["appointmentId", "version", "ignored"],
    "properties": {"appointmentId": {"type": "string"}, "version": {"type": "integer"}, "ignored": {"type": "boolean"}},
}
openapi.SCHEMAS["Appointment"] = {
    "type": "object",
    "required": ["appointmentId", "resourceId", "start", "end", "status", "title", "version", "write"],
    "properties": {
        "appointmentId": {"type": "string"},
        "resourceId": {"type": "string"},
        "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time"},
        "status": {"enum": ["confirmed", "cancelled"]},
        "title": {"type": "string"},
        "description": {"type": ["string", "null"]},
        "location": {"type": ["string", "null"]},
        "attendees": {"type": "array", "items": {"type": "string"}},
        "version": {"type": "integer"},
        "write": {
            "type": "object",
            "properties": {
                "state": {"enum": ["pending", "waiting_calendar", "failed", "written"]},
                "attempts": {"type": "integer"},
                "nextAttemptAt": openapi.NULLABLE_TIME,
                "lastError": {"type": ["string", "null"]},
                "linkId": {"type": ["integer", "null"]},
                "calendarId": {"type": ["string", "null"]},
                "providerEventId": {"type": ["string", "null"]},
                "etag": {"type": ["string", "null"]},
                "writtenVersion": {"type": ["integer", "null"]},
                "eventDeleted": {"type": "boolean"},
            },
        },
    },
}
openapi.register(
    PATH,
    "put",
    openapi.operation(
        "Record a confirmed, rescheduled or cancelled appointment and queue its write",
        params=_PARAMS,
        body=openapi.ref("AppointmentIn"),
        responses={
            202: openapi.json_body(_ACK, "Stored and queued"),
            200: openapi.json_body(_ACK, "An older or equal version: ignored"),
            400: openapi.ERROR,
            404: openapi.ERROR,
            409: openapi.ERROR,
        },
        tags=["appointments"],
    ),
)
openapi.register(
    PATH,
    "delete",
    openapi.operation(
        "Cancel an appointment (optional body {version})",
        params=_PARAMS,
        responses={
            202: openapi.json_body(_ACK, "Cancelled and queued"),
            200: openapi.json_body(_ACK, "Already cancelled or an older version: ignored"),
            400: openapi.ERROR,
            404: openapi.ERROR,
        },
        tags=["appointments"],
    ),
)
openapi.register(
    PATH,
    "get",
    openapi.operation(
        "An appointment and its write state",
        params=_PARAMS,
        responses={200: openapi.json_body(openapi.ref("Appointment")), 404: openapi.ERROR},
        tags=["appointments"],
    ),
)
