"""Write throughput: 1,000 appointments confirmed at once across 100 resources, until every
event exists at the sandbox. Target: at least 300 appointments/s and no duplicate.

    .venv/bin/python -m bench.write [--appointments 1000] [--resources 100] [--provider both|google|outlook]

The write sweep runs as in the daemon (woken through Redis). Two scenarios:

- burst (the target): the appointments are confirmed at once, in one transaction with the
  statement a main API sharing the database uses (`MAIN_API_UPSERT`, docs/write.md);
- api: the same number PUT over real HTTP to the control API, 50 requests in flight; this
  also measures the API, which runs in the same process and competes for the same CPU.

Each clock runs from the first write of an appointment until the outbox is empty; then every
sandbox calendar is listed to count events per appointment (duplicates and missing ones).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web
from sqlalchemy import text

from bench.harness import Stack, bench_stack, quiet_logs
from jobs import write
from providers.google import mapping as google_mapping
from providers.outlook import mapping as outlook_mapping
from worker import wakeups
from worker.api.app import build_app
from worker.api.auth import mint_token
from worker.db import outbox
from worker.db.appointments import MAIN_API_UPSERT
from worker.db.resources import create_resource
from worker.db.tables import CalendarLink, ExternalCalendar

SANDBOX_NAME = {"google": "google", "outlook": "microsoft"}
IN_FLIGHT = 50  # concurrent PUTs, as a busy main API might send them
TARGET_PER_SECOND = 300


@dataclass
class Resource:
    """A benchmark resource: its company's token and the sandbox calendar it writes to."""

    id: str
    provider: str
    email: str
    calendar_id: str
    token: str


async def make_resource(stack: Stack, i: int, provider: str) -> Resource:
    """A sandbox user, a resource, an active connection and a write link to the primary calendar."""
    deps, sb = stack.deps, SANDBOX_NAME[provider]
    email = f"bench-write-{i}@calsync.test"
    user = await stack.sandbox.control.create_user(sb, email)
    issued = await stack.sandbox.control.issue_tokens(sb, email)
    calendar_id = next(c["id"] for c in user["calendars"] if c["primary"])
    async with deps.sessions.begin() as session:
        await create_resource(session=session, resource_id=f"res-{i}", company_id=f"co-{i}")
        conn = ExternalCalendar(
            resource_id=f"res-{i}",
            provider=provider,
            status="active",
            account_email=email,
            refresh_token_enc=deps.cipher.encrypt(issued["refresh_token"]),
        )
        session.add(conn)
        await session.flush()
        session.add(CalendarLink(connection_id=conn.id, resource_id=f"res-{i}", calendar_id=calendar_id, write=True))
    token = mint_token(deps.settings.auth, company_id=f"co-{i}", ttl_seconds=3600, now=int(time.time()))
    return Resource(f"res-{i}", provider, email, calendar_id, token)


@contextlib.asynccontextmanager
async def serve(stack: Stack) -> AsyncIterator[str]:
    """The control API on a free loopback port."""
    runner = web.AppRunner(build_app(stack.deps), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


def slot(n: int) -> tuple[datetime, datetime]:
    """A 45-minute slot per appointment number: eight a day from tomorrow."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1 + n // 8, hours=n % 8)
    return start, start + timedelta(minutes=45)


def appointment(n: int) -> dict[str, object]:
    start, end = slot(n)
    return {"start": start.isoformat(), "end": end.isoformat(), "status": "confirmed", "title": f"b{n}", "version": 1}


async def put_all(stack: Stack, url: str, resources: list[Resource], ids: list[str]) -> None:
    """PUT the appointments spread evenly over the resources, IN_FLIGHT at a time."""
    limit = asyncio.Semaphore(IN_FLIGHT)

    async def one(n: int) -> None:
        res = resources[n % len(resources)]
        path = f"{url}/v3/resource/{res.id}/appointments/{ids[n]}"
        headers = {"Authorization": f"Bearer {res.token}"}
        async with limit, stack.deps.http.put(path, json=appointment(n), headers=headers) as resp:
            if resp.status != 202:
                raise RuntimeError(f"PUT answered {resp.status}: {await resp.text()}")

    await asyncio.gather(*(one(n) for n in range(len(ids))))


async def confirm_at_once(stack: Stack, resources: list[Resource], ids: list[str]) -> None:
    """Record every appointment and its outbox entry in one transaction (the shared-database path)."""
    rows = []
    for n, appt in enumerate(ids):
        start, end = slot(n)
        rows.append(
            {
                "id": appt,
                "resource_id": resources[n % len(resources)].id,
                "start_at": start,
                "end_at": end,
                "status": "confirmed",
                "title": f"b{n}",
                "description": None,
                "location": None,
                "attendees": "[]",
                "version": 1,
            }
        )
    async with stack.deps.sessions.begin() as session:
        await session.execute(text(MAIN_API_UPSERT), rows)
    await wakeups.wake(stack.deps.redis, stack.deps.prefix, wakeups.OUTBOX)


async def outbox_empty(stack: Stack, *, deadline: float) -> None:
    while time.monotonic() < deadline:
        async with stack.deps.sessions.begin() as session:
            if await outbox.count(session=session) == 0:
                return
        await asyncio.sleep(0.02)
    raise TimeoutError("the outbox did not drain")


async def tally(stack: Stack, resources: list[Resource]) -> Counter[str]:
    """Events per appointment tag over every benchmark calendar."""
    tags: Counter[str] = Counter()
    for res in resources:
        raw = await stack.sandbox.control.list_events(SANDBOX_NAME[res.provider], res.email, res.calendar_id)
        parse = google_mapping.parse_event if res.provider == "google" else outlook_mapping.parse_event
        for event in map(parse, raw):
            tag = getattr(event, "appointment_tag", None)
            if tag and getattr(event, "status", "") != "cancelled":
                tags[tag] += 1
    return tags


@dataclass
class Run:
    """One scenario's figures."""

    name: str
    count: int
    seconds: float
    recorded_seconds: float
    duplicates: int
    missing: int

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def report(self) -> str:
        return (
            f"  {self.name:<6} recorded in {self.recorded_seconds:6.2f} s; every event at the sandbox after"
            f" {self.seconds:6.2f} s: {self.rate:7,.0f} appointments/s; duplicates {self.duplicates},"
            f" missing {self.missing}"
        )


async def scenario(
    stack: Stack, resources: list[Resource], name: str, count: int, record: Callable[[list[str]], Awaitable[None]]
) -> Run:
    """Record `count` new appointments with `record`, wait for the outbox to drain, count events."""
    ids = [f"{name}-{n}" for n in range(count)]
    started = time.perf_counter()
    await record(ids)
    recorded = time.perf_counter() - started
    await outbox_empty(stack, deadline=time.monotonic() + 300)
    elapsed = time.perf_counter() - started
    tags = await tally(stack, resources)
    ours = {tag: n for tag, n in tags.items() if tag.startswith(f"{name}-")}
    duplicates = sum(n - 1 for n in ours.values() if n > 1)
    return Run(name, count, elapsed, recorded, duplicates, count - len(ours))


async def main(count: int, resource_count: int, provider: str) -> int:
    """Set up, run both scenarios, print; exit status 1 if the burst misses a target."""
    quiet_logs()
    secret = {"jwt_secret": secrets.token_hex(32)}
    async with bench_stack(write={"sweep_seconds": 0.05}, auth=secret) as stack:
        providers = ["google", "outlook"] if provider == "both" else [provider]
        resources = [await make_resource(stack, i, providers[i % len(providers)]) for i in range(resource_count)]
        async with serve(stack) as url:
            sweeper = asyncio.ensure_future(write.sweep(stack.deps, seconds=3600))
            try:
                burst = await scenario(
                    stack, resources, "burst", count, lambda ids: confirm_at_once(stack, resources, ids)
                )
                api = await scenario(stack, resources, "api", count, lambda ids: put_all(stack, url, resources, ids))
            finally:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
                await stack.deps.tasks.drain(5.0)
    print(f"{count} appointments confirmed at once over {resource_count} resources ({provider})")
    print(burst.report())
    print(api.report())
    ok = burst.rate >= TARGET_PER_SECOND and burst.duplicates == api.duplicates == 0 and burst.missing == 0
    print(f"  target: burst ≥ {TARGET_PER_SECOND}/s with no duplicate and none missing:", "OK" if ok else "MISSED")
    return 0 if ok else 1


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--appointments", type=int, default=1000)
    parser.add_argument("--resources", type=int, default=100)
    parser.add_argument("--provider", choices=["both", "google", "outlook"], default="both")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.appointments, args.resources, args.provider)))


if __name__ == "__main__":
    cli()
