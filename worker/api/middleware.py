"""Request middlewares: request id, one access-log line, error envelope, metrics."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError, OperationalError

from worker.api.errors import ApiError, error_response
from worker.api.keys import DEPS
from worker.logging import get_logger
from worker.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = get_logger("calsync.access")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
# PostgreSQL or Redis unreachable (a restart, an outage): nothing was served, so say "retry
# shortly" (503) instead of the 500 of a bug; providers and the main API retry a 503.
_OUTAGES = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind a request id, turn every failure into the JSON envelope, log and count once."""
    incoming = request.headers.get("X-Request-ID", "")
    request_id = incoming if 0 < len(incoming) <= 128 and incoming.isprintable() else uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    try:
        # A slow client (or a stuck handler) cannot hold a worker longer than this.
        async with asyncio.timeout(request.app[DEPS].settings.server.request_timeout_seconds):
            response = await handler(request)
    except TimeoutError:
        response = error_response(408, "request_timeout", "request took too long")
    except ApiError as exc:
        response = exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "http_error")
        response = error_response(exc.status, code, exc.reason or code)
    except _OUTAGES as exc:
        error = type(exc).__name__
        log.warning("request.dependency_unavailable", method=request.method, path=request.path, error=error)
        response = error_response(503, "dependency_unavailable", "the database or Redis is unavailable; retry shortly")
        response.headers["Retry-After"] = "1"
    except Exception:
        log.exception("request.failed", method=request.method, path=request.path)
        response = error_response(500, "internal", "internal error; see the server log with this request id")
    response.headers["X-Request-ID"] = request_id
    elapsed = time.perf_counter() - started
    route = _route_name(request)
    HTTP_REQUESTS.labels(request.method, route, str(response.status)).inc()
    HTTP_LATENCY.labels(request.method, route).observe(elapsed)
    log.info(
        "http.request",
        method=request.method,
        route=route,
        status=response.status,
        duration_ms=round(elapsed * 1000, 2),
    )
    return response
