"""Availability answers per second, cached and uncached, and the cost of syncExternal=true.

Starts embedded PostgreSQL and Redis, the sandbox and the control API in-process, then:

1. a resource with 2,000 busy rows (one 62-day query covers them all): answers/s with a
   warm cache and uncached (a range never asked before), sequential and concurrent;
2. a sandbox-connected resource whose calendar has not changed: the latency of a cached
   answer, of the same answer with syncExternal=true, and of one raw incremental listing
   at the sandbox (one provider round trip). Target: syncExternal adds at most one round
   trip plus 10 ms.

    .venv/bin/python -m bench.availability [--rows 2000] [--requests 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

from jobs.sync import sync_link, sync_resource
from providers.sandbox import Sandbox, start_sandbox
from worker import eventloop
from worker.api.app import build_app
from worker.api.auth import mint_token
from worker.clock import SystemClock
from worker.config import Settings, with_overrides
from worker.crypto import TokenCipher, new_key
from worker.db.engine import make_engine, make_sessions
from worker.db.migrate import upgrade
from worker.db.resources import create_resource
from worker.db.tables import CalendarLink, ExternalCalendar
from worker.db.unavailability import BusyRow, upsert
from worker.deps import Deps
from worker.embedded import embedded_postgres, embedded_redis
from worker.logging import configure

SECRET = "bench-secret-" + "x" * 32
START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def settings_for(db: str, redis: str, sb: Sandbox) -> Settings:
    """Embedded servers, a bench JWT secret and providers pointed at the sandbox."""
    return with_overrides(
        Settings(),
        database={"url": db},
        redis={"url": redis, "prefix": "bench:"},
        auth={"jwt_secret": SECRET},
        crypto={"keys": [new_key()]},
        sandbox={"mode": "off"},
        logging={"level": "warning"},
        google={
            "client_id": "sandbox-google-client",
            "client_secret": "sandbox-google-secret",
            "token_url": sb.google_token_url,
            "api_base": sb.google_api,
        },
    )


async def add_link(deps: Deps, resource_id: str, **conn: Any) -> CalendarLink:
    """An active Google connection with one read link, synced just now."""
    async with deps.sessions.begin() as session:
        connection = ExternalCalendar(resource_id=resource_id, provider="google", status="active", **conn)
        session.add(connection)
        await session.flush()
        link = CalendarLink(
            connection_id=connection.id,
            resource_id=resource_id,
            calendar_id=conn.get("account_email") or "primary",
            read=True,
            last_synced_at=deps.clock.now(),
        )
        session.add(link)
        await session.flush()
        return link


async def busy_resource(deps: Deps, rows: int) -> str:
    """A resource with `rows` 20-minute busy rows, one every 30 minutes from START."""
    async with deps.sessions.begin() as session:
        await create_resource(session=session, resource_id="bench-busy", company_id="bench", timezone="Europe/Paris")
    link = await add_link(deps, "bench-busy")
    busy = [
        BusyRow(f"e{i}", START + timedelta(minutes=30 * i), START + timedelta(minutes=30 * i + 20)) for i in range(rows)
    ]
    async with deps.sessions.begin() as session:
        await upsert(session=session, resource_id="bench-busy", link_id=link.id, rows=busy, now=deps.clock.now())
    return "bench-busy"


async def synced_resource(deps: Deps, sb: Sandbox) -> tuple[str, str]:
    """A resource connected to a sandbox calendar with 20 events, synced once; (resource, access token)."""
    email = "bench-avail@example.test"
    await sb.control.create_user("google", email)
    issued = await sb.control.issue_tokens("google", email)
    for i in range(20):
        start = START + timedelta(hours=i)
        body = {
            "summary": f"e{i}",
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(minutes=30)).isoformat()},
        }
        await sb.control.create_event("google", email, body)
    async with deps.sessions.begin() as session:
        await create_resource(session=session, resource_id="bench-sync", company_id="bench")
    link = await add_link(
        deps, "bench-sync", account_email=email, refresh_token_enc=deps.cipher.encrypt(issued["refresh_token"])
    )
    outcome = await sync_link(deps, link.id)
    assert outcome.status == "synced", outcome
    return "bench-sync", issued["access_token"]


async def rate(fn: Callable[[], Awaitable[None]], requests: int, concurrency: int) -> float:
    """Requests per second of `fn` run `requests` times by `concurrency` workers."""
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await fn()

    started = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return requests / (time.perf_counter() - started)


async def latency(fn: Callable[[], Awaitable[Any]], runs: int) -> float:
    """Median seconds of one call."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


class Client:
    """GET /v3/availability against the served app."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url = http, url
        self.headers = {"Authorization": "Bearer " + mint_token_for("bench")}

    async def raw(self, resource: str, days: int, **extra: str) -> bytes:
        """The answer's bytes: throughput figures leave the client's JSON parsing out."""
        params = {"resourceId": resource, "startDate": START.date().isoformat()}
        params |= {"endDate": (START + timedelta(days=days)).date().isoformat()} | extra
        async with self.http.get(f"{self.url}/v3/availability", params=params, headers=self.headers) as resp:
            resp.raise_for_status()
            return await resp.read()

    async def get(self, resource: str, days: int, **extra: str) -> dict[str, Any]:
        return dict(json.loads(await self.raw(resource, days, **extra)))


def mint_token_for(company: str) -> str:
    auth = with_overrides(Settings(), auth={"jwt_secret": SECRET}).auth
    return mint_token(auth, company_id=company, ttl_seconds=3600, now=int(time.time()))


async def answers(client: Client, resource: str, requests: int, concurrency: int) -> None:
    """Print cached and uncached answers/s for the busy resource."""
    raw = await client.raw(resource, 62)
    body = json.loads(raw)
    busy, free = len(body["busy"]), len(body["free"])
    print(f"resource with {busy} busy and {free} free intervals in one 62-day answer ({len(raw) / 1e6:.1f} MB)")

    async def cached() -> None:
        await client.raw(resource, 62)

    shift = iter(range(1, 1_000_000))

    async def uncached() -> None:
        # A range no answer was cached for (one second later each time): a real computation,
        # not shared with a concurrent request the way purge-then-ask would be.
        start = (START + timedelta(seconds=next(shift))).isoformat()
        await client.raw(resource, 62, startDate=start)

    for name, fn in (("cached", cached), ("uncached", uncached)):
        for c in sorted({1, concurrency}):
            print(f"  {name:8} concurrency {c}: {await rate(fn, requests, c):8.1f} answers/s")


async def sync_overhead(deps: Deps, sb: Sandbox, client: Client, resource: str, token: str) -> None:
    """Print the added latency of syncExternal=true when nothing changed, against one round trip."""
    http = deps.http
    await client.get(resource, 7)
    body = await client.get(resource, 7, syncExternal="true")
    assert body["cache"] == "hit" and body["syncExternal"]["completed"], body["syncExternal"]
    listing = await http.get(f"{sb.google_api}/calendars/primary/events", headers={"Authorization": f"Bearer {token}"})
    sync_token = (await listing.json())["nextSyncToken"]

    async def round_trip() -> None:
        async with http.get(
            f"{sb.google_api}/calendars/primary/events",
            params={"syncToken": sync_token},
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            await resp.read()

    plain = await latency(lambda: client.raw(resource, 7), 50)
    jit = await latency(lambda: client.raw(resource, 7, syncExternal="true"), 50)
    trip = await latency(round_trip, 50)
    job = await latency(lambda: sync_resource(deps, resource, deadline=2.0), 50)
    overhead = jit - plain
    verdict = "OK" if overhead <= trip + 0.010 else "OVER TARGET"
    print(f"syncExternal=true, nothing changed: cached answer {plain * 1000:.2f} ms, with sync {jit * 1000:.2f} ms")
    print(f"  overhead {overhead * 1000:.2f} ms vs one provider round trip {trip * 1000:.2f} ms + 10 ms: {verdict}")
    print(f"  of which jobs.sync.sync_resource alone takes {job * 1000:.2f} ms")


async def serve(deps: Deps) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(build_app(deps), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]


async def run(db: str, redis_url: str, rows: int, requests: int, concurrency: int) -> None:
    async with AsyncExitStack() as stack:
        sb = await start_sandbox()
        stack.push_async_callback(sb.stop)
        settings = settings_for(db, redis_url, sb)
        engine = make_engine(db, pool_size=concurrency + 2)
        stack.push_async_callback(engine.dispose)
        redis = Redis.from_url(redis_url, decode_responses=True, socket_timeout=5)
        stack.push_async_callback(redis.aclose)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        deps = Deps(
            settings,
            engine,
            make_sessions(engine),
            redis,
            http,
            SystemClock(),
            TokenCipher(settings.crypto.keys),
            "bench",
        )
        runner, url = await serve(deps)
        stack.push_async_callback(runner.cleanup)
        client = Client(http, url)
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (noisy above 1 per CPU)")
        await answers(client, await busy_resource(deps, rows), requests, concurrency)
        resource, token = await synced_resource(deps, sb)
        await sync_overhead(deps, sb, client, resource, token)
        await deps.tasks.drain(2.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    configure("warning")
    with (
        tempfile.TemporaryDirectory(prefix="calsync-bench-") as tmp,
        embedded_postgres(Path(tmp) / "pg") as db,
        embedded_redis(Path(tmp) / "redis") as redis_url,
    ):
        upgrade(db)
        eventloop.run(run(db, redis_url, args.rows, args.requests, args.concurrency))


if __name__ == "__main__":
    main()
