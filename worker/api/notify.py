"""/v3/webhooks: the main API registers URLs for calsync's signed event notifications."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from worker.api.auth import verify_token
from worker.api.errors import BadRequest, NotFound
from worker.api.keys import DEPS
from worker.db import notifications as repo
from worker.db.resources import ensure_company
from worker.db.tables import WebhookDelivery, WebhookEndpoint
from worker.wakeups import wake

routes = web.RouteTableDef()


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048)
    event_types: list[str] = Field(alias="eventTypes", min_length=1, max_length=len(repo.EVENT_TYPES))

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        return v

    @field_validator("event_types")
    @classmethod
    def _types(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(repo.EVENT_TYPES))
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {list(repo.EVENT_TYPES)}")
        return sorted(set(v))


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise BadRequest("body is not valid JSON", code="invalid_json") from None


def _invalid(exc: ValidationError) -> BadRequest:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "body"
    return BadRequest(f"{field}: {err['msg']}", code="invalid_request")


def _endpoint(e: WebhookEndpoint) -> dict[str, Any]:
    return {"id": e.id, "url": e.url, "eventTypes": e.event_types, "createdAt": e.created_at.isoformat()}


def _delivery(d: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "eventId": d.event_id,
        "type": d.event_type,
        "status": d.status,
        "attempts": d.attempts,
        "lastStatus": d.last_status,
        "lastError": d.last_error,
        "nextAttemptAt": d.next_attempt_at.isoformat() if d.status == "pending" else None,
        "createdAt": d.created_at.isoformat(),
        "deliveredAt": d.delivered_at.isoformat() if d.delivered_at else None,
        "payload": d.payload,
    }


@routes.post("/v3/webhooks")
async def create_webhook(request: web.Request) -> web.Response:
    """Register a URL; the signing secret is returned here and never again."""
    caller = verify_token(request)
    try:
        body = EndpointIn.model_validate(await _json(request))
    except ValidationError as exc:
        raise _invalid(exc) from None
    deps = request.app[DEPS]
    secret = "whsec_" + secrets.token_urlsafe(32)
    async with deps.sessions.begin() as session:
        await ensure_company(session=session, company_id=caller.company_id)
        endpoint = await repo.create_endpoint(
            session=session,
            company_id=caller.company_id,
            url=body.url,
            event_types=body.event_types,
            secret_enc=deps.cipher.encrypt(secret),
        )
    return web.json_response({**_endpoint(endpoint), "secret": secret}, status=201)


@routes.get("/v3/webhooks")
async def list_webhooks(request: web.Request) -> web.Response:
    caller = verify_token(request)
    async with request.app[DEPS].sessions.begin() as session:
        endpoints = await repo.endpoints_of(session=session, company_id=caller.company_id)
    return web.json_response({"webhooks": [_endpoint(e) for e in endpoints]})


@routes.delete("/v3/webhooks/{webhookId}")
async def delete_webhook(request: web.Request) -> web.Response:
    caller = verify_token(request)
    async with request.app[DEPS].sessions.begin() as session:
        found = await repo.delete_endpoint(
            session=session, company_id=caller.company_id, endpoint_id=request.match_info["webhookId"]
        )
    if not found:
        raise NotFound("webhook not found", code="webhook_not_found")
    return web.Response(status=204)


@routes.post("/v3/webhooks/{webhookId}/rotateSecret")
async def rotate_webhook_secret(request: web.Request) -> web.Response:
    """A new secret (returned once); the old one keeps signing for notify.secret_overlap_seconds."""
    caller = verify_token(request)
    deps = request.app[DEPS]
    secret = "whsec_" + secrets.token_urlsafe(32)
    overlap = timedelta(seconds=deps.settings.notify.secret_overlap_seconds)
    async with deps.sessions.begin() as session:
        endpoint = await repo.get_endpoint(
            session=session, company_id=caller.company_id, endpoint_id=request.match_info["webhookId"]
        )
        if endpoint is None:
            raise NotFound("webhook not found", code="webhook_not_found")
        await repo.rotate_secret(
            session=session,
            endpoint=endpoint,
            new_secret_enc=deps.cipher.encrypt(secret),
            overlap_until=deps.clock.now() + overlap,
        )
    valid_until = endpoint.previous_secret_expires_at
    body = {
        **_endpoint(endpoint),
        "secret": secret,
        "previousSecretValidUntil": valid_until.isoformat() if valid_until else None,
    }
    return web.json_response(body)


@routes.get("/v3/webhooks/{webhookId}/deliveries")
async def list_deliveries(request: web.Request) -> web.Response:
    caller = verify_token(request)
    async with request.app[DEPS].sessions.begin() as session:
        endpoint = await repo.get_endpoint(
            session=session, company_id=caller.company_id, endpoint_id=request.match_info["webhookId"]
        )
        if endpoint is None:
            raise NotFound("webhook not found", code="webhook_not_found")
        deliveries = await repo.deliveries_of(session=session, endpoint_id=endpoint.id)
    return web.json_response({"deliveries": [_delivery(d) for d in deliveries]})


@routes.post("/v3/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver")
async def redeliver(request: web.Request) -> web.Response:
    """Send a delivery again, with the same event id."""
    caller = verify_token(request)
    deps = request.app[DEPS]
    async with deps.sessions.begin() as session:
        endpoint = await repo.get_endpoint(
            session=session, company_id=caller.company_id, endpoint_id=request.match_info["webhookId"]
        )
        queued = endpoint is not None and await repo.redeliver(
            session=session,
            endpoint_id=endpoint.id,
            delivery_id=request.match_info["deliveryId"],
            now=deps.clock.now(),
        )
    if not queued:
        raise NotFound("delivery not found", code="delivery_not_found")
    await wake(deps.redis, deps.prefix, "notify")
    return web.json_response({"status": "queued"}, status=202)
