"""Wire models of the external-calendar API (camelCase) and the one connection serializer.

`connection_json` is the only place a connection becomes JSON; it never includes a token.
Other areas add fields to it (and to `CONNECTION_SCHEMA` in worker/api/openapi.py).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from worker.api.errors import BadRequest
from worker.db.tables import CalendarLink, ExternalCalendar, Resource

CALENDAR_ID_MAX = 1024  # calendar_links.calendar_id is VARCHAR(1024)
RESOURCE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
Model = TypeVar("Model", bound=BaseModel)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False, strict=True)


class CreateConnection(_In):
    provider: Literal["google", "outlook"]


class ListCalendars(_In):
    external_calendar_id: int | None = Field(None, alias="externalCalendarId", ge=1, le=2**63 - 1)


class Select(_In):
    read_calendar_ids: list[str] = Field(alias="readCalendarIds", max_length=100)
    write_calendar_id: str | None = Field(None, alias="writeCalendarId", min_length=1, max_length=CALENDAR_ID_MAX)

    @field_validator("read_calendar_ids")
    @classmethod
    def _ids(cls, v: list[str]) -> list[str]:
        if any(not i or len(i) > CALENDAR_ID_MAX for i in v):
            raise ValueError(f"each id must be 1 to {CALENDAR_ID_MAX} characters")
        return list(dict.fromkeys(v))


class CreateResource(_In):
    id: str | None = Field(None, min_length=1, max_length=64)
    name: str = Field("", max_length=200)
    timezone: str = Field("UTC", min_length=1, max_length=64)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str | None) -> str | None:
        if v is not None and not RESOURCE_ID.match(v):
            raise ValueError("may hold only letters, digits and . _ : -")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.isprintable():
            raise ValueError("must not contain control characters")
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as Europe/Berlin") from None
        return v


async def read_json(request: web.Request, *, optional: bool = False) -> Any:
    """The JSON body; a clear 400 when it is not JSON (an empty body is {} when optional)."""
    raw = await request.read()
    if optional and not raw.strip():
        return {}
    try:
        return await request.json()
    except ValueError:
        raise BadRequest("body is not valid JSON", code="invalid_json") from None


def parse(model: type[Model], data: Any) -> Model:
    """Validate against a model; the first problem becomes a 400 naming the field."""
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object", code="invalid_request")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise BadRequest(f"{field}: {err['msg']}", code="invalid_request") from None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _calendar_json(link: CalendarLink) -> dict[str, Any]:
    return {
        "calendarId": link.calendar_id,
        "name": link.name,
        "read": link.read,
        "write": link.write,
        "primary": link.primary,
        "lastSyncedAt": _iso(link.last_synced_at),
        "lastError": link.last_error,
    }


def _sync_json(links: list[CalendarLink]) -> dict[str, Any]:
    """The connection's sync health: its stalest read calendar and worst failure streak."""
    read = [link for link in links if link.read]
    synced = [link.last_synced_at for link in read]
    pending = [link.next_attempt_at for link in read if link.next_attempt_at is not None]
    return {
        "lastSyncedAt": _iso(min(synced)) if synced and None not in synced else None,  # type: ignore[type-var]
        "lastError": next((link.last_error for link in read if link.last_error), None),
        "consecutiveFailures": max((link.consecutive_failures for link in read), default=0),
        "nextAttemptAt": _iso(min(pending)) if pending else None,
    }


def connection_json(connection: ExternalCalendar, links: list[CalendarLink]) -> dict[str, Any]:
    """A connection as the API shows it: state, account, calendars and sync health; never a token."""
    primary = next((link for link in links if link.primary), links[0] if links else None)
    return {
        "id": connection.id,
        "provider": connection.provider,
        "pending": connection.status == "pending",
        "status": connection.status,
        "read": any(link.read for link in links),
        "write": any(link.write for link in links),
        "calendarId": primary.calendar_id if primary else None,
        "calendarEmail": connection.account_email,
        "calendars": [_calendar_json(link) for link in links],
        "sync": _sync_json(links),
        "lastError": connection.last_error,
        "connectedAt": _iso(connection.connected_at),
        "createdAt": _iso(connection.created_at),
    }


def resource_json(resource: Resource) -> dict[str, Any]:
    return {"id": resource.id, "companyId": resource.company_id, "name": resource.name, "timezone": resource.timezone}
