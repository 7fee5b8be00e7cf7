"""Provider requests, retries and token refreshes reach the Prometheus registry."""

from __future__ import annotations

from typing import Any

import aiohttp
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs.clients import client_for
from tests.conftest import make_deps, sandbox_settings
from tests.factories import make_connection, make_resource, new_id
from worker.config import Settings
from worker.metrics import REGISTRY


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_requests_retries_and_refreshes_are_counted(
    settings: Settings, engine: AsyncEngine, redis: Redis, http: aiohttp.ClientSession, sandbox: Any
) -> None:
    deps = make_deps(sandbox_settings(settings, sandbox, "http://127.0.0.1:9"), engine, redis, http)
    email = f"{new_id('m')}@example.test"
    await sandbox.control.create_user("google", email)
    tokens = await sandbox.control.issue_tokens("google", email)
    resource = await make_resource(deps.sessions)
    conn = await make_connection(
        deps.sessions,
        resource=resource,
        status="active",
        account_email=email,
        refresh_token_enc=deps.cipher.encrypt(tokens["refresh_token"]),
    )
    before = {
        "ok": _count("calsync_provider_requests_total", provider="google", status="200"),
        "503": _count("calsync_provider_requests_total", provider="google", status="503"),
        "retry": _count("calsync_provider_retries_total", provider="google", reason="UnavailableError"),
        "refresh": _count("calsync_token_refreshes_total", provider="google", outcome="ok"),
    }
    fault = await sandbox.control.add_fault(provider="google", path="/calendarList", status=503, count=1)
    try:
        await client_for(deps, conn).list_calendars()
    finally:
        await sandbox.control.clear_faults()
    assert fault
    assert _count("calsync_provider_requests_total", provider="google", status="503") == before["503"] + 1
    assert _count("calsync_provider_retries_total", provider="google", reason="UnavailableError") == before["retry"] + 1
    assert _count("calsync_token_refreshes_total", provider="google", outcome="ok") == before["refresh"] + 1
    assert _count("calsync_provider_requests_total", provider="google", status="200") >= before["ok"] + 2
