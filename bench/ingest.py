"""Ingest throughput: calsync's full sync into PostgreSQL beside, in the same run, (a) the rate
at which the same pages are only fetched and JSON-parsed from the sandbox and (b) a naive
sync that inserts row by row through the ORM. Targets: sync ≥ 70% of (a), ≥ 10x (b).

    .venv/bin/python -m bench.ingest [--runs 3] [--provider google|outlook] [--naive-calendars 10]

Scenarios: one calendar of 10,000 events, and 100 calendars of 1,000 events (one account
each, synced `sync.concurrency` at a time; (a) and (b) use the same concurrency). Finally a
no-change incremental sync is checked: one provider request, no row written. Every run starts
from the same database: what the previous run left is deleted and vacuumed first (`forget`),
and other resources' rows stay throughout, as in any database in use (`resident`).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import msgspec
from sqlalchemy import text

from bench.harness import Cpu, CpuMeter, Stack, bench_stack, quiet_logs, timed
from jobs import sync
from jobs.ingest import sync_window
from providers.rules import DEFAULT_POLICY, to_busy
from worker import eventloop
from worker.db import links
from worker.db.resources import create_resource
from worker.db.tables import CalendarLink, ExternalCalendar, Unavailability

SANDBOX_NAME = {"google": "google", "outlook": "microsoft"}
GOOGLE_PAGE = 2500  # what GoogleCalendarClient asks for
GRAPH_PAGE = 500  # what GraphCalendarClient asks for
RESIDENT_LINKS, RESIDENT_ROWS = 100, 1_000


@dataclass
class Cal:
    """One benchmark calendar: sandbox account, its tokens, and its current link row."""

    provider: str
    email: str
    calendar_id: str
    tokens: dict[str, Any]
    link_id: int = 0

    @property
    def token(self) -> str:
        return str(self.tokens["access_token"])


def bodies(provider: str, n: int, first: datetime) -> list[dict[str, Any]]:
    """N half-hour events, one every 10 minutes from `first`."""
    out = []
    for i in range(n):
        start = first + timedelta(minutes=10 * i)
        end = start + timedelta(minutes=30)
        if provider == "google":
            out.append(
                {"summary": f"e{i}", "start": {"dateTime": start.isoformat()}, "end": {"dateTime": end.isoformat()}}
            )
        else:
            naive = {"s": start.replace(tzinfo=None).isoformat(), "e": end.replace(tzinfo=None).isoformat()}
            out.append(
                {
                    "subject": f"e{i}",
                    "start": {"dateTime": naive["s"], "timeZone": "UTC"},
                    "end": {"dateTime": naive["e"], "timeZone": "UTC"},
                }
            )
    return out


async def make_calendars(stack: Stack, provider: str, count: int, events: int) -> list[Cal]:
    """`count` sandbox accounts of `events` events each, each connected to a new resource."""
    control = stack.sandbox.control
    first = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    cals = []
    for i in range(count):
        email = f"bench{i}-{events}@calsync.test"
        user = await control.create_user(SANDBOX_NAME[provider], email)
        calendar_id = next(c["id"] for c in user["calendars"] if c["primary"])
        await control.bulk_load(SANDBOX_NAME[provider], email, bodies(provider, events, first), calendar_id)
        tokens = await control.issue_tokens(SANDBOX_NAME[provider], email)
        cals.append(Cal(provider, email, calendar_id, tokens))
    await connect(stack, cals)
    return cals


async def connect(stack: Stack, cals: Sequence[Cal]) -> None:
    """Give every calendar a new resource, connection and read link (as after OAuth + select),
    so each run is a first full sync into an empty link."""
    await forget(stack, cals)
    cipher = stack.deps.cipher
    async with stack.deps.sessions.begin() as session:
        for cal in cals:
            conn = ExternalCalendar(
                provider=cal.provider,
                status="active",
                account_email=cal.email,
                refresh_token_enc=cipher.encrypt(cal.tokens["refresh_token"]),
                access_token_enc=cipher.encrypt(cal.tokens["access_token"]),
                access_token_expires_at=datetime.now(UTC) + timedelta(seconds=cal.tokens["expires_in"]),
            )
            cal.link_id = await _new_link(session, f"r-{uuid.uuid4().hex}", conn, cal.calendar_id)


async def _new_link(session: Any, resource_id: str, conn: ExternalCalendar, calendar_id: str) -> int:
    """A new resource with `conn` and one primary read link on `calendar_id`; the link's id."""
    resource = await create_resource(session=session, resource_id=resource_id, company_id="bench")
    conn.resource_id = resource.id
    session.add(conn)
    await session.flush()
    link = CalendarLink(
        connection_id=conn.id, resource_id=resource.id, calendar_id=calendar_id, read=True, primary=True
    )
    session.add(link)
    await session.flush()
    return link.id


async def forget(stack: Stack, cals: Sequence[Cal]) -> None:
    """Delete what an earlier run left of these calendars (resource, connection, link, rows),
    then VACUUM ANALYZE: every run starts from the same database, and none pays for an
    earlier run's dead rows (autovacuum) or for statistics that predate its links."""
    ids = [cal.link_id for cal in cals if cal.link_id]
    if not ids:
        return
    async with stack.deps.sessions.begin() as session:
        params = {"ids": ids}
        resources = await session.execute(text("SELECT resource_id FROM calendar_links WHERE id = ANY(:ids)"), params)
        owned = {"resources": list(resources.scalars())}
        await session.execute(text("DELETE FROM external_calendars WHERE resource_id = ANY(:resources)"), owned)
        await session.execute(text("DELETE FROM resources WHERE id = ANY(:resources)"), owned)
    async with stack.deps.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE"))
    for cal in cals:
        cal.link_id = 0


async def resident(stack: Stack) -> None:
    """Busy rows of other resources, loaded once and never synced (their connections need
    reauthorising, so no sweep claims them): every run writes into a populated table.

    Without them `forget` left an empty table that VACUUM ANALYZE had just measured as empty,
    and PostgreSQL rebuilt its cached plans for that: the sync target's "has the link rows"
    check became a scan of the whole table, which grew as the run went on (13 ms per link at
    68,000 rows, by auto_explain). A database in use is not empty, and autovacuum would
    re-plan within a minute; the benchmark measured that first minute on every run.
    """
    async with stack.deps.sessions.begin() as session:
        unpolled = [ExternalCalendar(provider="google", status="reauth_required") for _ in range(RESIDENT_LINKS)]
        ids = [await _new_link(session, f"resident-{i}", conn, "primary") for i, conn in enumerate(unpolled)]
        fill = """
            INSERT INTO unavailability (resource_id, link_id, provider_event_id, start_at, end_at, synced_at)
            SELECT l.resource_id, l.id, 'resident-' || n, now() + n * interval '10 minutes',
                   now() + n * interval '10 minutes' + interval '30 minutes', now()
            FROM calendar_links AS l, generate_series(1, :rows) AS n WHERE l.id = ANY(:ids)
        """
        await session.execute(text(fill), {"rows": RESIDENT_ROWS, "ids": ids})


# --- (a) fetch + JSON parse only -----------------------------------------------------------


async def fetch_only(stack: Stack, provider: str, cal: Cal) -> int:
    """Page through the same full listing the sync makes, parsing JSON and nothing else (with
    msgspec, the decoder calsync uses, into plain dicts and lists)."""
    window = sync_window(datetime.now(UTC), stack.deps.settings.sync)
    headers = {"Authorization": f"Bearer {cal.token}"}
    http = stack.deps.http
    if provider == "google":
        url = f"{stack.sandbox.google_api}/calendars/{cal.calendar_id}/events"
        params = {"singleEvents": "true", "maxResults": str(GOOGLE_PAGE)}
        params |= {"timeMin": window.start.isoformat(), "timeMax": window.end.isoformat()}
        return await _google_pages(http, url, params, headers)
    headers["Prefer"] = f'odata.maxpagesize={GRAPH_PAGE}, outlook.timezone="UTC"'
    query = f"startDateTime={_z(window.start)}&endDateTime={_z(window.end)}"
    return await _graph_pages(http, f"{stack.sandbox.graph_api}/me/calendarView/delta?{query}", headers)


def _z(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _google_pages(http: aiohttp.ClientSession, url: str, params: dict[str, str], headers: dict[str, str]) -> int:
    count, token = 0, None
    while True:
        query = params | ({"pageToken": token} if token else {})
        async with http.get(url, params=query, headers=headers) as resp:
            page = msgspec.json.decode(await resp.read())
        count += len(page["items"])
        token = page.get("nextPageToken")
        if not token:
            return count


async def _graph_pages(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> int:
    count, next_url = 0, url
    while next_url:
        async with http.get(next_url, headers=headers) as resp:
            page = msgspec.json.decode(await resp.read())
        count += len(page["value"])
        next_url = page.get("@odata.nextLink")
    return count


# --- (b) naive: row-by-row ORM inserts -----------------------------------------------------


async def naive_sync(stack: Stack, cal: Cal) -> None:
    """The obvious implementation: fetch with the client, then one ORM INSERT per event."""
    deps = stack.deps
    async with deps.sessions.begin() as session:
        target = await links.sync_target(session=session, link_id=cal.link_id)
    assert target is not None
    client = sync.client_for_sync(deps, target.connection, interactive=False)
    window = sync_window(deps.clock.now(), deps.settings.sync)
    async with deps.sessions.begin() as session:
        async for page in client.list_changes(cal.calendar_id, None, window):
            for event in page.events:
                busy = to_busy(event, resource_tz=ZoneInfo("UTC"), window=window, policy=DEFAULT_POLICY)
                if busy is None:
                    continue
                session.add(
                    Unavailability(
                        resource_id=target.link.resource_id,
                        link_id=cal.link_id,
                        provider_event_id=busy.event_id,
                        start_at=busy.start,
                        end_at=busy.end,
                        all_day=busy.all_day,
                        show_as=busy.show_as,
                        rule=busy.rule,
                        etag=event.etag,
                    )
                )
                await session.flush()


# --- calsync ------------------------------------------------------------------------------


async def sync_all(stack: Stack, cals: Sequence[Cal]) -> None:
    """What the daemon does: sweep until every requested link is synced."""
    synced = 0
    while synced < len(cals):
        counts = await sync.run_once(stack.deps)
        if counts.get("failed"):
            raise RuntimeError(f"a sync failed: {counts}")
        synced += counts.get("synced", 0)


async def bounded(concurrency: int, cals: Sequence[Cal], one: Callable[[Cal], Awaitable[object]]) -> None:
    limit = asyncio.Semaphore(concurrency)

    async def run(cal: Cal) -> None:
        async with limit:
            await one(cal)

    await asyncio.gather(*(run(c) for c in cals))


async def scenario(stack: Stack, provider: str, count: int, events: int, runs: int, naive_count: int) -> None:
    """Print one scenario's three rates and their ratios."""
    cals = await make_calendars(stack, provider, count, events)
    total = count * events
    conc = stack.deps.settings.sync.concurrency
    fetched = await bounded_count(stack, provider, cals, conc)  # warm-up, and a check of the data
    assert fetched == total, (fetched, total)
    await sync_all(stack, cals)  # warm-up: pooled connections, prepared plans, token refreshes

    # (a) and calsync alternate run by run, so a busy machine slows both alike.
    meter = CpuMeter(stack.sandbox)
    fetch_rates, sync_rates = [], []
    fetch_cpu, sync_cpu = Cpu(), Cpu()
    for _ in range(runs):
        fetched_cpu = await meter.measure(lambda: bounded(conc, cals, lambda c: fetch_only(stack, provider, c)))
        await connect(stack, cals)
        synced_cpu = await meter.measure(lambda: sync_all(stack, cals))
        fetch_rates.append(total / fetched_cpu.wall)
        sync_rates.append(total / synced_cpu.wall)
        fetch_cpu, sync_cpu = fetch_cpu + fetched_cpu, sync_cpu + synced_cpu
    fetch_rate, sync_rate = statistics.median(fetch_rates), statistics.median(sync_rates)
    subset = cals[: max(1, min(naive_count, count))]
    await connect(stack, subset)
    naive_s = await timed(lambda: bounded(conc, subset, lambda c: naive_sync(stack, c)))
    naive_rate = len(subset) * events / naive_s
    await forget(stack, cals)

    label = f"{provider}: {count} calendar{'s' if count > 1 else ''} x {events:,} events"
    print(f"\n{label} (median of {runs} runs, concurrency {conc})")
    print(f"  calsync full sync          {sync_rate:>10,.0f} events/s")
    ratio_a, ratio_b = sync_rate / fetch_rate, sync_rate / naive_rate
    print(f"  (a) fetch + JSON parse     {fetch_rate:>10,.0f} events/s   sync/(a) = {ratio_a:5.0%}  (≥ 70%)")
    print(
        f"  (b) naive row-by-row ORM   {naive_rate:>10,.0f} events/s   sync/(b) = {ratio_b:5.1f}x"
        f"  (≥ 10x; {len(subset)} calendar{'s' if len(subset) > 1 else ''})"
    )
    print("  CPU per 100,000 events, calsync / PostgreSQL / sandbox:")
    print(f"    calsync full sync  {sync_cpu.per(total * runs)}")
    print(f"    (a)                {fetch_cpu.per(total * runs)}")


async def bounded_count(stack: Stack, provider: str, cals: Sequence[Cal], conc: int) -> int:
    counts: list[int] = []

    async def one(cal: Cal) -> None:
        counts.append(await fetch_only(stack, provider, cal))

    await bounded(conc, cals, one)
    return sum(counts)


async def no_change_incremental(stack: Stack, provider: str) -> None:
    """A sync with nothing new: one provider round trip, no row written."""
    cal = (await make_calendars(stack, provider, 1, 100))[0]
    await sync.sync_link(stack.deps, cal.link_id)
    control = stack.sandbox.control
    since = max((r["seq"] for r in await control.requests()), default=0)
    started = time.perf_counter()
    outcome = await sync.sync_link(stack.deps, cal.link_id)
    ms = (time.perf_counter() - started) * 1000
    requests = [r for r in await control.requests(SANDBOX_NAME[provider], since) if "/token" not in r["path"]]
    writes = outcome.added + outcome.updated + outcome.removed
    print(
        f"\n{provider}: no-change incremental sync: {len(requests)} provider request(s), {writes} rows written,", end=""
    )
    print(f" {ms:.1f} ms")


async def main(providers: Sequence[str], runs: int, naive_calendars: int) -> None:
    quiet_logs()
    # Each run lists the same account again within a second, which the per-user budget
    # (google.requests_per_second, 10) would throttle: what is measured here is ingest, not
    # that budget (tests/jobs/test_sync_budget.py checks it).
    async with bench_stack(google={"requests_per_second": 1000.0}) as stack:
        await resident(stack)
        for provider in providers:
            await scenario(stack, provider, 1, 10_000, runs, naive_calendars)
            await scenario(stack, provider, 100, 1_000, runs, naive_calendars)
            await no_change_incremental(stack, provider)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--provider", choices=("google", "outlook", "both"), default="google")
    parser.add_argument("--naive-calendars", type=int, default=10, help="calendars the slow baseline syncs")
    args = parser.parse_args()
    chosen = ("google", "outlook") if args.provider == "both" else (args.provider,)
    eventloop.run(main(chosen, args.runs, args.naive_calendars))
