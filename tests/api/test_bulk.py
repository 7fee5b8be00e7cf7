"""createUnavailabilityBulk over HTTP against both sandboxes: exact reconcile inside the range,
nothing outside it, no cursor change; 202 + job polling; validation and ownership."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs import sync
from providers.sandbox import Sandbox
from tests.conftest import make_deps, sandbox_settings, serve_api
from tests.jobs.conftest import Calendar, connect_calendar, day_start
from worker.api.auth import mint_token
from worker.config import Settings, with_overrides
from worker.db.tables import Resource
from worker.deps import Deps

H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.fixture(scope="module")
async def served(
    settings: Settings, sandbox: Sandbox, engine: AsyncEngine, redis: Redis, http: aiohttp.ClientSession
) -> AsyncIterator[tuple[Deps, str]]:
    deps = make_deps(sandbox_settings(settings, sandbox, "http://127.0.0.1:9"), engine, redis, http)
    async with serve_api(deps) as url:
        yield deps, url
    await deps.tasks.drain(2.0)


@pytest.fixture(params=["google", "outlook"])
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _company(cal: Calendar) -> str:
    async with cal.deps.sessions() as session:
        resource = await session.get(Resource, cal.resource_id)
        assert resource is not None
        return resource.company_id


async def _post(
    http: aiohttp.ClientSession, url: str, cal: Calendar, start: date, end: date, **extra: str
) -> tuple[int, Any]:
    token = mint_token(cal.deps.settings.auth, company_id=await _company(cal), now=int(time.time()))
    params = {"startDate": start.isoformat(), "endDate": end.isoformat(), **extra}
    path = f"{url}/v3/resource/{cal.resource_id}/externalCalendar/createUnavailabilityBulk"
    async with http.post(path, params=params, headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json()


async def test_bulk_reconciles_exactly_inside_the_range(
    served: tuple[Deps, str], sandbox: Sandbox, http: aiohttp.ClientSession, provider: str
) -> None:
    deps, url = served
    cal = await connect_calendar(deps, sandbox, provider, timezone="UTC")
    t = day_start(3) + 9 * H
    stay, move, drop, free, outside = [await cal.create(cal.timed(t + i * 2 * H)) for i in range(4)] + [
        await cal.create(cal.timed(day_start(20) + 9 * H))
    ]
    await sync.sync_link(deps, cal.link_id)
    cursor = (await cal.link()).sync_cursor
    await cal.patch(move, cal.moved(t + D))
    await cal.delete(drop)
    await cal.patch(free, cal.free())
    await cal.delete(outside)  # outside the range: bulk must leave its row alone
    new = await cal.create(cal.all_day(day_start(5).date()))

    status, body = await _post(http, url, cal, day_start(2).date(), day_start(10).date())

    assert status == 200, body
    assert body["status"] == "succeeded"
    (entry,) = body["calendars"]
    assert (entry["added"], entry["updated"], entry["removed"]) == (1, 1, 2)
    assert entry["externalCalendarId"] == cal.connection_id and entry["status"] == "done"
    assert await cal.rows() == [
        (stay, t, t + H),
        (move, t + D, t + D + H),
        (new, day_start(5), day_start(6)),
        (outside, day_start(20) + 9 * H, day_start(20) + 10 * H),
    ]
    link = await cal.link()
    assert link.sync_cursor == cursor and link.lease_owner is None


async def test_bulk_of_a_never_synced_calendar_and_one_connection(
    served: tuple[Deps, str], sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    deps, url = served
    cal = await connect_calendar(deps, sandbox, "google")
    await cal.create(cal.timed(day_start(2) + 9 * H))

    status, body = await _post(
        http, url, cal, day_start(1).date(), day_start(4).date(), externalCalendarId=str(cal.connection_id)
    )

    assert status == 200 and body["totals"]["added"] == 1 and len(await cal.rows()) == 1
    status, body = await _post(http, url, cal, day_start(1).date(), day_start(4).date(), externalCalendarId="999999")
    assert status == 404


async def test_slow_bulk_answers_202_and_the_job_reports_the_result(
    settings: Settings,
    sandbox: Sandbox,
    engine: AsyncEngine,
    redis: Redis,
    http: aiohttp.ClientSession,
) -> None:
    quick = with_overrides(sandbox_settings(settings, sandbox, "http://127.0.0.1:9"), sync={"bulk_wait_seconds": 0.1})
    deps = make_deps(quick, engine, redis, http)
    cal = await connect_calendar(deps, sandbox, "outlook")
    await cal.create(cal.timed(day_start(2) + 9 * H))
    await sandbox.control.add_fault(provider="microsoft", path="calendarView/delta", latency_ms=600, count=1)
    try:
        async with serve_api(deps) as url:
            status, body = await _post(http, url, cal, day_start(1).date(), day_start(4).date())
            assert status == 202 and body["status"] == "running"
            status_url = url + body["statusUrl"]
            token = mint_token(deps.settings.auth, company_id=await _company(cal), now=int(time.time()))
            headers = {"Authorization": f"Bearer {token}"}
            deadline = time.monotonic() + 10
            while body["status"] == "running" and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                async with http.get(status_url, headers=headers) as resp:
                    assert resp.status == 200
                    body = await resp.json()
            assert body["status"] == "succeeded" and body["totals"]["added"] == 1
            assert body["progress"] == {"calendarsDone": 1, "calendarsTotal": 1}
            bogus = f"{url}/v3/resource/{cal.resource_id}/externalCalendar/syncJobs/not-a-job"
            async with http.get(bogus, headers=headers) as resp:
                assert resp.status == 404
    finally:
        await sandbox.control.clear_faults()
        await deps.tasks.drain(2.0)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"startDate": "2026-12-01"},
        {"startDate": "yesterday", "endDate": "2026-12-02"},
        {"startDate": "2026-12-02", "endDate": "2026-12-02"},
        {"startDate": "2026-12-02", "endDate": "2026-12-01"},
        {"startDate": "2026-01-01", "endDate": "2027-03-01"},
        {"startDate": "2026-12-01", "endDate": "2026-12-02", "externalCalendarId": "abc"},
    ],
    ids=["none", "no-end", "not-a-date", "empty", "reversed", "too-long", "bad-connection-id"],
)
async def test_invalid_ranges_are_400(
    served: tuple[Deps, str], sandbox: Sandbox, http: aiohttp.ClientSession, params: dict[str, str]
) -> None:
    deps, url = served
    cal = await connect_calendar(deps, sandbox, "google")
    token = mint_token(deps.settings.auth, company_id=await _company(cal), now=int(time.time()))
    path = f"{url}/v3/resource/{cal.resource_id}/externalCalendar/createUnavailabilityBulk"
    async with http.post(path, params=params, headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] in ("invalid_request", "invalid_range", "range_too_long")


async def test_another_companys_resource_is_404(
    served: tuple[Deps, str], sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    deps, url = served
    cal = await connect_calendar(deps, sandbox, "google")
    token = mint_token(deps.settings.auth, company_id="someone-else", now=int(time.time()))
    path = f"{url}/v3/resource/{cal.resource_id}/externalCalendar/createUnavailabilityBulk"
    params = {"startDate": "2026-12-01", "endDate": "2026-12-02"}
    async with http.post(path, params=params, headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 404
    async with http.post(path, params=params) as resp:
        assert resp.status == 401
