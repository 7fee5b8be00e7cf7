"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from worker.api.keys import DEPS
from worker.metrics import REGISTRY

routes = web.RouteTableDef()
READY_TIMEOUT_SECONDS = 2.0  # a readiness probe must answer before the orchestrator's own timeout


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return web.json_response({"status": "ok"})


async def _check_database(request: web.Request) -> None:
    async with request.app[DEPS].engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _check_redis(request: web.Request) -> None:
    await request.app[DEPS].redis.ping()


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready when PostgreSQL and Redis both answer; 503 names the ones that do not."""
    checks = {"database": _check_database, "redis": _check_redis}
    failed: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(request), READY_TIMEOUT_SECONDS)
        except Exception as exc:  # any failure means "not ready"; the name of it is enough
            failed[name] = type(exc).__name__
    if failed:
        return web.json_response({"status": "unavailable", "failed": failed}, status=503)
    return web.json_response({"status": "ready"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
