"""How many events per second the sandbox serves for a full listing of 10,000 events.

Starts the sandbox in-process, bulk-loads one calendar, then pages through
`events.list` over real HTTP (as a client does for a full sync) and prints events/s.
This is the ceiling for calsync's own ingest benchmarks. A second figure lists the
same 10,000-event window out of a 100,000-event calendar, which must not be much slower.

    .venv/bin/python -m bench.sandbox_listing [--events 10000] [--page 2500] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from providers.sandbox import Sandbox, start_sandbox

EMAIL = "bench@example.test"
BASE = datetime(2026, 1, 1, tzinfo=UTC)


def bodies(n: int, offset: int = 0) -> list[dict[str, Any]]:
    """N half-hour events, one every 10 minutes from BASE (+ offset slots)."""
    out = []
    for i in range(offset, offset + n):
        start = BASE + timedelta(minutes=10 * i)
        end = start + timedelta(minutes=30)
        out.append({"summary": f"e{i}", "start": {"dateTime": start.isoformat()}, "end": {"dateTime": end.isoformat()}})
    return out


async def full_listing(http: aiohttp.ClientSession, url: str, token: str, params: dict[str, str]) -> int:
    """Page through a listing; return the number of items."""
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


async def measure(sb: Sandbox, token: str, params: dict[str, str], runs: int, expected: int) -> float:
    """Median events/s over `runs` full listings, each over a freshly changed calendar."""
    url = f"{sb.google_api}/calendars/primary/events"
    first = (await sb.control.list_events("google", EMAIL))[0]["id"]
    rates = []
    async with aiohttp.ClientSession() as http:
        for run in range(runs):
            # a change, so the listing builds a new snapshot instead of reusing the cached one
            await sb.control.patch_event("google", EMAIL, first, {"description": str(run)})
            started = time.perf_counter()
            count = await full_listing(http, url, token, params)
            rates.append(count / (time.perf_counter() - started))
            assert count == expected, (count, expected)
    return statistics.median(rates)


async def main(events: int, page: int, runs: int, big: int) -> None:
    """Load, list, print."""
    sb = await start_sandbox()
    try:
        await sb.control.create_user("google", EMAIL)
        token = (await sb.control.issue_tokens("google", EMAIL))["access_token"]
        started = time.perf_counter()
        await sb.control.bulk_load("google", EMAIL, bodies(events))
        load_s = time.perf_counter() - started
        rate = await measure(sb, token, {"maxResults": str(page)}, runs, events)
        print(f"bulk load: {events} events in {load_s:.2f} s ({events / load_s:,.0f} events/s)")
        print(f"full listing of {events} events, maxResults={page}: {rate:,.0f} events/s (median of {runs})")
        await sb.control.bulk_load("google", EMAIL, bodies(big - events, offset=events))
        window = {
            "maxResults": str(page),
            "timeMin": BASE.isoformat(),
            "timeMax": (BASE + timedelta(minutes=10 * events - 1)).isoformat(),
        }
        rate_big = await measure(sb, token, window, runs, events)
        print(f"same {events} events as a window of a {big}-event calendar: {rate_big:,.0f} events/s")
    finally:
        await sb.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--page", type=int, default=2500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--big", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.page, args.runs, args.big))
