"""Cross-cutting HTTP behaviour: error envelope, request ids, body limit, slow clients, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Api, make_deps, serve_api
from worker.config import Settings, with_overrides


async def test_unknown_route_and_method_get_the_json_envelope(api: Api) -> None:
    async with api.session.get(f"{api.url}/nope") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"
    async with api.session.delete(f"{api.url}/healthz") as resp:
        assert resp.status == 405
        assert (await resp.json())["error"]["code"] == "method_not_allowed"


async def test_request_id_is_honoured_or_minted(api: Api) -> None:
    async with api.session.get(f"{api.url}/healthz", headers={"X-Request-ID": "abc-123"}) as resp:
        assert resp.headers["X-Request-ID"] == "abc-123"
    async with api.session.get(f"{api.url}/healthz") as resp:
        assert len(resp.headers["X-Request-ID"]) == 32


async def test_oversized_body_is_413(api: Api) -> None:
    big = b"x" * (api.deps.settings.server.max_body_bytes + 1)
    async with api.session.post(f"{api.url}/v3/webhooks", data=big, headers=api.headers("co")) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "payload_too_large"


@pytest.fixture
async def impatient_api(
    settings: Settings, engine: AsyncEngine, redis: Redis, http: aiohttp.ClientSession
) -> AsyncIterator[str]:
    quick = with_overrides(settings, server={"request_timeout_seconds": 0.3})
    async with serve_api(make_deps(quick, engine, redis, http)) as url:
        yield url


async def test_slow_client_times_out_without_holding_the_server(impatient_api: str, api: Api) -> None:
    host, port = impatient_api.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /v3/webhooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + api.token("co").encode() + b"\r\nContent-Length: 100\r\n\r\n{"
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 5)
    assert b" 408 " in status_line
    writer.close()


async def test_metrics_count_requests_by_route_and_status(api: Api) -> None:
    async with api.session.get(f"{api.url}/healthz"):
        pass
    async with api.session.get(f"{api.url}/metrics") as resp:
        text = await resp.text()
    assert 'calsync_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "calsync_http_request_seconds_bucket" in text


async def test_readyz_names_the_failed_dependency(
    settings: Settings, engine: AsyncEngine, http: aiohttp.ClientSession
) -> None:
    dead_redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    async with serve_api(make_deps(settings, engine, dead_redis, http)) as url, http.get(url + "/readyz") as resp:
        assert resp.status == 503
        assert (await resp.json())["failed"].keys() == {"redis"}
    await dead_redis.aclose()
