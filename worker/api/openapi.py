"""GET /openapi.json: the OpenAPI 3.1 document of every route, built from module-level data.

How to describe a new route (tests/api/test_openapi.py fails while a route is missing):

    from worker.api import openapi
    openapi.register("/v3/things/{thingId}", "get", openapi.operation(
        "Read a thing",
        params=[openapi.path_param("thingId")],
        responses={200: openapi.json_body({"$ref": "#/components/schemas/Thing"}), 404: openapi.ERROR},
    ))
    openapi.SCHEMAS["Thing"] = {"type": "object", "properties": {...}}

Call `register` at import time of the route's module (or add the entry below). `operation`
adds the bearer security requirement, 401 and the JSON error envelope as the `default`
response unless `auth=False`. Every status the route can answer should be listed.
"""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

routes = web.RouteTableDef()

Json = dict[str, Any]
PATHS: dict[str, dict[str, Json]] = {}
SCHEMAS: dict[str, Json] = {}

ERROR: Json = {
    "description": "An error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
HTML: Json = {"description": "A small HTML page for the person at the browser", "content": {"text/html": {}}}
NO_CONTENT: Json = {"description": "Done; no body"}


def register(path: str, method: str, operation_dict: Json) -> None:
    """Describe one route (path in aiohttp/OpenAPI `{name}` form, method lower case)."""
    PATHS.setdefault(path, {})[method.lower()] = operation_dict


def json_body(schema: Json, description: str = "OK") -> Json:
    """A response (or request body) with a JSON schema."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def path_param(name: str, schema: Json | None = None) -> Json:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


def query_param(name: str, schema: Json, *, required: bool = False) -> Json:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def operation(
    summary: str,
    *,
    responses: dict[int, Json],
    params: list[Json] | None = None,
    body: Json | None = None,
    auth: bool = True,
    tags: list[str] | None = None,
) -> Json:
    """An operation object; auth adds bearer security and a 401; errors default to the envelope."""
    answers: Json = {str(status): value for status, value in responses.items()}
    if auth:
        answers.setdefault("401", ERROR)
    answers.setdefault("default", ERROR)
    op: Json = {"summary": summary, "responses": answers}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if auth:
        op["security"] = [{"bearerAuth": []}]
    if tags:
        op["tags"] = tags
    return op


def document() -> Json:
    """The whole OpenAPI 3.1 document as it stands now."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "calsync control API",
            "version": "3",
            "description": "External calendar sync: connect Google/Outlook calendars, control sync and writes.",
        },
        "paths": copy.deepcopy(PATHS),
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


@routes.get("/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    """This document."""
    return web.json_response(document())


# -- shared schemas -------------------------------------------------------------------------

NULLABLE_TIME: Json = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS.update(
    {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
                }
            },
        },
        "Resource": {
            "type": "object",
            "required": ["id", "companyId", "name", "timezone"],
            "properties": {
                "id": {"type": "string"},
                "companyId": {"type": "string"},
                "name": {"type": "string"},
                "timezone": {"type": "string"},
            },
        },
        "CreateResource": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"},
                "name": {"type": "string", "maxLength": 200},
                "timezone": {"type": "string", "maxLength": 64, "description": "IANA zone, default UTC"},
            },
        },
        "LinkedCalendar": {
            "type": "object",
            "required": ["calendarId", "name", "read", "write", "primary"],
            "properties": {
                "calendarId": {"type": "string"},
                "name": {"type": "string"},
                "read": {"type": "boolean"},
                "write": {"type": "boolean"},
                "primary": {"type": "boolean"},
                "lastSyncedAt": NULLABLE_TIME,
                "lastError": {"type": ["string", "null"]},
            },
        },
        "SyncStatus": {
            "type": "object",
            "required": ["lastSyncedAt", "lastError", "consecutiveFailures", "nextAttemptAt"],
            "properties": {
                "lastSyncedAt": NULLABLE_TIME,
                "lastError": {"type": ["string", "null"]},
                "consecutiveFailures": {"type": "integer", "minimum": 0},
                "nextAttemptAt": NULLABLE_TIME,
            },
        },
        "Connection": {
            "type": "object",
            "required": ["id", "provider", "pending", "status", "read", "write", "calendars", "sync"],
            "properties": {
                "id": {"type": "integer"},
                "provider": {"enum": ["google", "outlook"]},
                "pending": {"type": "boolean"},
                "status": {"enum": ["pending", "active", "reauth_required", "error"]},
                "read": {"type": "boolean"},
                "write": {"type": "boolean"},
                "calendarId": {"type": ["string", "null"]},
                "calendarEmail": {"type": ["string", "null"]},
                "calendars": {"type": "array", "items": ref("LinkedCalendar")},
                "sync": ref("SyncStatus"),
                "lastError": {"type": ["string", "null"]},
                "connectedAt": NULLABLE_TIME,
                "createdAt": NULLABLE_TIME,
            },
        },
        "ConnectionWithAuthUrl": {
            "allOf": [
                ref("Connection"),
                {
                    "type": "object",
                    "required": ["authUrl", "authUrlExpiresAt"],
                    "properties": {"authUrl": {"type": "string"}, "authUrlExpiresAt": {"type": "string"}},
                },
            ]
        },
        "Connections": {
            "type": "object",
            "required": ["externalCalendars", "appointmentWrites"],
            "properties": {
                "externalCalendars": {"type": "array", "items": ref("Connection")},
                "appointmentWrites": {
                    "type": "object",
                    "description": "the resource's appointment writes not yet done, by state",
                    "properties": {
                        "pending": {"type": "integer"},
                        "waitingCalendar": {"type": "integer"},
                        "failed": {"type": "integer"},
                    },
                },
            },
        },
        "CreateConnection": {
            "type": "object",
            "additionalProperties": False,
            "required": ["provider"],
            "properties": {"provider": {"enum": ["google", "outlook"]}},
        },
        "ListCalendarsRequest": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"externalCalendarId": {"type": "integer", "minimum": 1}},
        },
        "ProviderCalendars": {
            "type": "object",
            "required": ["externalCalendarId", "calendars"],
            "properties": {
                "externalCalendarId": {"type": "integer"},
                "calendars": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "summary", "primary", "accessRole", "read", "write"],
                        "properties": {
                            "id": {"type": "string"},
                            "summary": {"type": "string"},
                            "primary": {"type": "boolean"},
                            "accessRole": {"type": "string"},
                            "read": {"type": "boolean"},
                            "write": {"type": "boolean"},
                        },
                    },
                },
            },
        },
        "Selection": {
            "type": "object",
            "additionalProperties": False,
            "required": ["readCalendarIds"],
            "properties": {
                "readCalendarIds": {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 1024}},
                "writeCalendarId": {"type": ["string", "null"], "maxLength": 1024},
            },
        },
    }
)

# -- health (worker/api/health.py) ------------------------------------------------------------

_HEALTH = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}
register("/healthz", "get", operation("Liveness", auth=False, responses={200: json_body(_HEALTH)}))
register(
    "/readyz",
    "get",
    operation(
        "Readiness: PostgreSQL and Redis answer",
        auth=False,
        responses={200: json_body(_HEALTH), 503: json_body(_HEALTH, "A dependency is down")},
    ),
)
register(
    "/metrics",
    "get",
    operation(
        "Prometheus metrics",
        auth=False,
        responses={200: {"description": "Prometheus text", "content": {"text/plain": {}}}},
    ),
)
register(
    "/openapi.json",
    "get",
    operation("This document", auth=False, responses={200: json_body({"type": "object"})}),
)

# -- resources and external calendars (worker/api/resources.py, calendars.py, oauth.py) -----

_RID = path_param("id", {"type": "string", "maxLength": 64})
_CID = path_param("externalCalendarId", {"type": "string", "pattern": "^[0-9]{1,19}$"})
_TAG = ["external calendars"]

register(
    "/v3/resource",
    "post",
    operation(
        "Create a resource of the caller's company (standalone and demo deployments)",
        body=ref("CreateResource"),
        responses={201: json_body(ref("Resource"), "Created"), 400: ERROR, 409: ERROR},
        tags=["resources"],
    ),
)
register(
    "/v3/resource/{id}",
    "delete",
    operation(
        "Disconnect every external calendar of the resource, then delete it",
        params=[_RID],
        responses={204: NO_CONTENT, 404: ERROR, 409: ERROR},
        tags=["resources"],
    ),
)
register(
    "/v3/resource/{id}/externalCalendar",
    "post",
    operation(
        "Start connecting a Google or Outlook account: a pending connection and its authUrl",
        params=[_RID],
        body=ref("CreateConnection"),
        responses={201: json_body(ref("ConnectionWithAuthUrl"), "Created"), 400: ERROR, 404: ERROR, 503: ERROR},
        tags=_TAG,
    ),
)
register(
    "/v3/resource/{id}/externalCalendar/{externalCalendarId}/regenerateAuthUrl",
    "put",
    operation(
        "A fresh authUrl; the previous one stops working (also recovers reauth_required)",
        params=[_RID, _CID],
        responses={200: json_body(ref("ConnectionWithAuthUrl")), 404: ERROR, 503: ERROR},
        tags=_TAG,
    ),
)
register(
    "/v3/resource/{id}/externalCalendar/{externalCalendarId}",
    "delete",
    operation(
        "Disconnect: delete the connection and its busy rows; stop push and revoke in the background",
        params=[_RID, _CID],
        responses={204: NO_CONTENT, 404: ERROR},
        tags=_TAG,
    ),
)
register(
    "/v3/resource/{id}/externalCalendars",
    "get",
    operation(
        "Every connection of the resource with its calendars and sync status",
        params=[_RID],
        responses={200: json_body(ref("Connections")), 404: ERROR},
        tags=_TAG,
    ),
)
_LIST_RESPONSES = {200: json_body(ref("ProviderCalendars")), 400: ERROR, 404: ERROR, 409: ERROR, 503: ERROR}
register(
    "/v3/resource/{id}/externalCalendars/list",
    "get",
    operation(
        "The Google account's calendars",
        params=[_RID, query_param("externalCalendarId", {"type": "string", "pattern": "^[0-9]{1,19}$"})],
        responses=_LIST_RESPONSES,
        tags=_TAG,
    ),
)
_list_post = operation(
    "The Google account's calendars (externalCalendarId in an optional body, or the query)",
    params=[_RID, query_param("externalCalendarId", {"type": "string", "pattern": "^[0-9]{1,19}$"})],
    body=ref("ListCalendarsRequest"),
    responses=_LIST_RESPONSES,
    tags=_TAG,
)
_list_post["requestBody"]["required"] = False
register("/v3/resource/{id}/externalCalendars/list", "post", _list_post)
_SELECT_RESPONSES = {200: json_body(ref("Connection")), 400: ERROR, 404: ERROR, 409: ERROR, 503: ERROR}
register(
    "/v3/resource/{id}/externalCalendars/select",
    "post",
    operation(
        "Choose read calendars and the write calendar of the resource's only Google account",
        params=[_RID],
        body=ref("Selection"),
        responses=_SELECT_RESPONSES,
        tags=_TAG,
    ),
)
register(
    "/v3/resource/{id}/externalCalendars/{externalCalendarId}/select",
    "post",
    operation(
        "Choose read calendars and the write calendar of one Google connection",
        params=[_RID, _CID],
        body=ref("Selection"),
        responses=_SELECT_RESPONSES,
        tags=_TAG,
    ),
)
register(
    "/oauth/callback",
    "get",
    operation(
        "Where the provider sends the browser after consent; answers a small HTML page",
        auth=False,
        params=[
            query_param("code", {"type": "string"}),
            query_param("state", {"type": "string"}),
            query_param("error", {"type": "string"}),
        ],
        responses={200: HTML, 400: HTML, 410: HTML, 503: HTML},
        tags=["oauth"],
    ),
)

# -- outbound webhooks (worker/api/notify.py) --------------------------------------------------

_WID = path_param("webhookId")
_ANY_OBJECT: Json = {"type": "object"}
register(
    "/v3/webhooks",
    "post",
    operation(
        "Register a URL for signed event notifications (the secret is returned once)",
        body={
            "type": "object",
            "required": ["url", "eventTypes"],
            "additionalProperties": False,
            "properties": {
                "url": {"type": "string", "maxLength": 2048},
                "eventTypes": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            },
        },
        responses={201: json_body(_ANY_OBJECT, "Created"), 400: ERROR},
        tags=["webhooks"],
    ),
)
register(
    "/v3/webhooks",
    "get",
    operation("The company's webhooks", responses={200: json_body(_ANY_OBJECT)}, tags=["webhooks"]),
)
register(
    "/v3/webhooks/{webhookId}",
    "delete",
    operation("Remove a webhook", params=[_WID], responses={204: NO_CONTENT, 404: ERROR}, tags=["webhooks"]),
)
register(
    "/v3/webhooks/{webhookId}/rotateSecret",
    "post",
    operation(
        "A new signing secret; the old one keeps signing for a while",
        params=[_WID],
        responses={200: json_body(_ANY_OBJECT), 404: ERROR},
        tags=["webhooks"],
    ),
)
register(
    "/v3/webhooks/{webhookId}/deliveries",
    "get",
    operation(
        "Recent deliveries of a webhook",
        params=[_WID],
        responses={200: json_body(_ANY_OBJECT), 404: ERROR},
        tags=["webhooks"],
    ),
)
register(
    "/v3/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver",
    "post",
    operation(
        "Send a delivery again with the same event id",
        params=[_WID, path_param("deliveryId")],
        responses={202: json_body(_ANY_OBJECT, "Queued"), 404: ERROR},
        tags=["webhooks"],
    ),
)

# -- routes of other areas, described loosely until their owners refine them -----------------
# (A module that calls `register` for the same path and method replaces these entries.)

_TEXT: Json = {"description": "Plain text", "content": {"text/plain": {}}}
_EMPTY: Json = {"description": "Accepted; no body"}

register(
    "/v3/resource/{id}/externalCalendar/createUnavailabilityBulk",
    "post",
    operation(
        "Sync the resource's read calendars over a date range (200 when done in time, else 202)",
        params=[_RID],
        body=_ANY_OBJECT,
        responses={200: json_body(_ANY_OBJECT), 202: json_body(_ANY_OBJECT, "Running"), 400: ERROR, 404: ERROR},
        tags=_TAG,
    ),
)
register(
    "/v3/resource/{id}/externalCalendar/syncJobs/{jobId}",
    "get",
    operation(
        "Progress of a createUnavailabilityBulk run",
        params=[_RID, path_param("jobId")],
        responses={200: json_body(_ANY_OBJECT), 404: ERROR},
        tags=_TAG,
    ),
)
_AVAILABILITY_PARAMS = [
    query_param("resourceId", {"type": "string", "maxLength": 64}, required=True),
    query_param("startDate", {"type": "string"}, required=True),
    query_param("endDate", {"type": "string"}, required=True),
    query_param("syncExternal", {"type": "boolean"}),
    query_param("duration", {"type": "integer", "minimum": 1}),
]
register(
    "/v3/availability",
    "get",
    operation(
        "Free time of a resource (syncExternal=true syncs its read calendars first)",
        params=_AVAILABILITY_PARAMS,
        responses={200: json_body(_ANY_OBJECT), 400: ERROR, 404: ERROR, 503: ERROR},
        tags=["availability"],
    ),
)
register(
    "/v3/availability/explain",
    "get",
    operation(
        "Why a resource is busy at an instant",
        params=[
            query_param("resourceId", {"type": "string", "maxLength": 64}, required=True),
            query_param("at", {"type": "string"}, required=True),
        ],
        responses={200: json_body(_ANY_OBJECT), 400: ERROR, 404: ERROR},
        tags=["availability"],
    ),
)
register(
    "/status",
    "get",
    operation(
        "Operator status page (admin token)",
        auth=False,
        params=[query_param("token", {"type": "string"})],
        responses={200: HTML, 401: ERROR, 404: ERROR},
        tags=["operations"],
    ),
)
register(
    "/webhooks/google",
    "post",
    operation(
        "Google Calendar push notification (channel headers)",
        auth=False,
        responses={200: _EMPTY, 400: ERROR, 401: ERROR, 404: ERROR},
        tags=["provider webhooks"],
    ),
)
for _path, _summary in (
    ("/webhooks/outlook", "Microsoft Graph change notifications (or validationToken handshake)"),
    ("/webhooks/outlook/lifecycle", "Microsoft Graph lifecycle notifications (or validationToken handshake)"),
):
    register(
        _path,
        "post",
        operation(
            _summary,
            auth=False,
            params=[query_param("validationToken", {"type": "string"})],
            responses={200: _TEXT, 202: _EMPTY, 400: ERROR},
            tags=["provider webhooks"],
        ),
    )
