"""How many events per second the sandbox serves for a full listing of 10,000 events.

Starts the sandbox in-process, bulk-loads one calendar, then pages through the listing
a client makes for a full sync over real HTTP and prints events/s: Google's
`events.list`, or with `--provider microsoft` Graph's `calendarView/delta` (UTC, the
page size as `odata.maxpagesize`; 500 by default, as calsync's Graph client asks). This
is the ceiling for calsync's own ingest benchmarks. The first listing is also shown on
its own, as it renders every event for the first time. A second figure lists the same
10,000-event window out of a 100,000-event calendar, which must not be much slower.

    .venv/bin/python -m bench.sandbox_listing [--provider google|microsoft] [--events 10000] [--page N] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from providers.sandbox import Sandbox, start_sandbox

EMAIL = "bench@example.test"
PAGE = {"google": 2500, "microsoft": 500}  # maxResults / odata.maxpagesize by default
BASE = datetime(2026, 1, 1, tzinfo=UTC)

Lister = Callable[[aiohttp.ClientSession], Awaitable[int]]


def bodies(provider: str, n: int, offset: int = 0) -> list[dict[str, Any]]:
    """N half-hour events, one every 10 minutes from BASE (+ offset slots)."""
    out: list[dict[str, Any]] = []
    for i in range(offset, offset + n):
        start = BASE + timedelta(minutes=10 * i)
        end = start + timedelta(minutes=30)
        if provider == "google":
            out.append(
                {"summary": f"e{i}", "start": {"dateTime": start.isoformat()}, "end": {"dateTime": end.isoformat()}}
            )
        else:
            times = {"start": start, "end": end}
            out.append(
                {"subject": f"e{i}"}
                | {k: {"dateTime": v.replace(tzinfo=None).isoformat(), "timeZone": "UTC"} for k, v in times.items()}
            )
    return out


async def google_listing(http: aiohttp.ClientSession, url: str, token: str, params: dict[str, str]) -> int:
    """Page through an events.list listing; return the number of items."""
    headers = {"Authorization": f"Bearer {token}"}
    count, page_token = 0, None
    while True:
        query = {**params, **({"pageToken": page_token} if page_token else {})}
        async with http.get(url, params=query, headers=headers) as resp:
            resp.raise_for_status()
            page = await resp.json()
        count += len(page["items"])
        page_token = page.get("nextPageToken")
        if page_token is None:
            return count


async def graph_listing(http: aiohttp.ClientSession, url: str, token: str, page_size: int) -> int:
    """Follow a calendarView/delta chain to its deltaLink; return the number of items."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Prefer": f'odata.maxpagesize={page_size}, outlook.timezone="UTC"',
    }
    count, next_url = 0, url
    while True:
        async with http.get(next_url, headers=headers) as resp:
            resp.raise_for_status()
            page = await resp.json()
        count += len(page["value"])
        if "@odata.nextLink" not in page:
            return count
        next_url = page["@odata.nextLink"]


def lister(sb: Sandbox, provider: str, token: str, page: int, start: datetime, end: datetime | None) -> Lister:
    """A full listing of [start, end) (the whole calendar for Google without an end)."""
    if provider == "google":
        params = {"maxResults": str(page)}
        if end is not None:
            params |= {"timeMin": start.isoformat(), "timeMax": end.isoformat()}
        url = f"{sb.google_api}/calendars/primary/events"
        return lambda http: google_listing(http, url, token, params)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    window = f"startDateTime={start:{stamp}}&endDateTime={(end or start + timedelta(days=3650)):{stamp}}"
    url = f"{sb.graph_api}/me/calendarView/delta?{window}"
    return lambda http: graph_listing(http, url, token, page)


async def measure(sb: Sandbox, provider: str, listing: Lister, runs: int, expected: int) -> list[float]:
    """Events/s of `runs` full listings, each over a freshly changed calendar."""
    first = (await sb.control.list_events(provider, EMAIL))[0]["id"]
    rates = []
    async with aiohttp.ClientSession() as http:
        for run in range(runs):
            # a change, so the listing builds a new snapshot instead of reusing the cached one
            change = {"description": str(run)} if provider == "google" else {"subject": f"changed {run}"}
            await sb.control.patch_event(provider, EMAIL, first, change)
            started = time.perf_counter()
            count = await listing(http)
            rates.append(count / (time.perf_counter() - started))
            assert count == expected, (count, expected)
    return rates


async def main(provider: str, events: int, page: int, runs: int, big: int) -> None:
    """Load, list, print."""
    sb = await start_sandbox()
    try:
        await sb.control.create_user(provider, EMAIL)
        token = (await sb.control.issue_tokens(provider, EMAIL))["access_token"]
        started = time.perf_counter()
        await sb.control.bulk_load(provider, EMAIL, bodies(provider, events))
        load_s = time.perf_counter() - started
        rates = await measure(sb, provider, lister(sb, provider, token, page, BASE, None), runs, events)
        print(f"{provider}: bulk load: {events} events in {load_s:.2f} s ({events / load_s:,.0f} events/s)")
        print(
            f"{provider}: full listing of {events} events, page {page}: {statistics.median(rates):,.0f} events/s"
            f" (median of {runs}; the first listing: {rates[0]:,.0f} events/s)"
        )
        await sb.control.bulk_load(provider, EMAIL, bodies(provider, big - events, offset=events))
        window = lister(sb, provider, token, page, BASE, BASE + timedelta(minutes=10 * events - 1))
        rate_big = statistics.median(await measure(sb, provider, window, runs, events))
        print(f"{provider}: same {events} events as a window of a {big}-event calendar: {rate_big:,.0f} events/s")
    finally:
        await sb.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--provider", choices=("google", "microsoft"), default="google")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--page", type=int, help="page size (default: 2500 for Google, 500 for Graph)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--big", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(main(args.provider, args.events, args.page or PAGE[args.provider], args.runs, args.big))
