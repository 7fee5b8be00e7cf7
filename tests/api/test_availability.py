"""GET /v3/availability and /explain over real HTTP, PostgreSQL, Redis and the sandbox."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.conftest import Api, make_deps, sandbox_settings, serve_api
from tests.factories import make_connection, make_link, make_resource, new_id
from worker import cache
from worker.config import with_overrides
from worker.db.tables import Appointment, CalendarLink, Company, Resource
from worker.db.unavailability import BusyRow, upsert

DAY = "2026-06-01"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


async def fresh_link(api: Api, resource: Resource, **kw: Any) -> CalendarLink:
    """A read calendar synced just now (fresh under any policy)."""
    conn = await make_connection(api.deps.sessions, resource=resource, status=kw.pop("status", "active"))
    kw.setdefault("last_synced_at", api.deps.clock.now())
    return await make_link(api.deps.sessions, connection=conn, calendar_id=new_id("cal"), read=True, **kw)


async def add_busy(api: Api, link: CalendarLink, *spans: tuple[str, str], purge: bool = True) -> None:
    """Store busy rows as a sync would, then purge the resource's cache as a sync does."""
    rows = [BusyRow(event_id=new_id("ev"), start=at(s), end=at(e)) for s, e in spans]
    async with api.deps.sessions() as session, session.begin():
        await upsert(
            session=session, resource_id=link.resource_id, link_id=link.id, rows=rows, now=api.deps.clock.now()
        )
    if purge:
        await cache.purge(api.deps.redis, api.deps.prefix, [link.resource_id])


async def add_appointment(api: Api, resource: Resource, start: str, end: str, status: str = "confirmed") -> str:
    appt_id = new_id("apt")
    async with api.deps.sessions() as session, session.begin():
        session.add(
            Appointment(
                id=appt_id, resource_id=resource.id, start_at=at(start), end_at=at(end), status=status, version=1
            )
        )
    await cache.purge(api.deps.redis, api.deps.prefix, [resource.id])
    return appt_id


async def get(api: Api, resource: Resource, status: int = 200, *, url: str | None = None, **params: Any) -> Any:
    query = {"resourceId": resource.id, "startDate": DAY, "endDate": "2026-06-02"} | params
    query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in query.items() if v is not None}
    async with api.session.get(
        f"{url or api.url}/v3/availability", params=query, headers=api.headers(resource.company_id)
    ) as resp:
        body = await resp.json()
        assert resp.status == status, body
        return body


def spans(intervals: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(i["start"], i["end"]) for i in intervals]


# --- shape, merge, sources -------------------------------------------------------------


async def test_overlapping_and_adjacent_rows_merge_with_their_sources(api: Api) -> None:
    resource = await make_resource(api.deps.sessions)
    link = await fresh_link(api, resource)
    await add_busy(api, link, ("2026-06-01T09:00Z", "2026-06-01T10:00Z"), ("2026-06-01T13:00Z", "2026-06-01T14:00Z"))
    overlapping = await add_appointment(api, resource, "2026-06-01T09:30Z", "2026-06-01T10:30Z")
    adjacent = await add_appointment(api, resource, "2026-06-01T14:00Z", "2026-06-01T15:00Z")
    await add_appointment(api, resource, "2026-06-01T16:00Z", "2026-06-01T17:00Z", status="cancelled")

    body = await get(api, resource)
    assert spans(body["busy"]) == [
        ("2026-06-01T09:00:00Z", "2026-06-01T10:30:00Z"),
        ("2026-06-01T13:00:00Z", "2026-06-01T15:00:00Z"),
    ]
    assert spans(body["free"]) == [
        ("2026-06-01T00:00:00Z", "2026-06-01T09:00:00Z"),
        ("2026-06-01T10:30:00Z", "2026-06-01T13:00:00Z"),
        ("2026-06-01T15:00:00Z", "2026-06-02T00:00:00Z"),
    ]
    first = {s["kind"]: s for s in body["busy"][0]["sources"]}
    assert first["appointment"]["ids"] == [overlapping]
    assert first["unavailability"]["calendar"] == {
        "linkId": link.id,
        "calendarId": link.calendar_id,
        "provider": "google",
    }
    assert len(first["unavailability"]["ids"]) == 1
    assert adjacent in body["busy"][1]["sources"][1]["ids"]
    assert body["freshness"]["policy"]["applied"] == "none"


async def test_duration_keeps_only_long_enough_free_intervals(api: Api) -> None:
    resource = await make_resource(api.deps.sessions)
    link = await fresh_link(api, resource)
    await add_busy(api, link, ("2026-06-01T00:00Z", "2026-06-01T09:00Z"), ("2026-06-01T09:20Z", "2026-06-02T00:00Z"))
    assert spans((await get(api, resource))["free"]) == [("2026-06-01T09:00:00Z", "2026-06-01T09:20:00Z")]
    assert (await get(api, resource, duration=30))["free"] == []
    assert len((await get(api, resource, duration=20))["free"]) == 1


async def test_dst_day_is_answered_in_local_time(api: Api) -> None:
    resource = await make_resource(api.deps.sessions, timezone="Europe/Berlin")
    link = await fresh_link(api, resource)
    # 01:00-04:00 local on the spring-forward day (02:00 → 03:00): two real hours.
    await add_busy(api, link, ("2026-03-29T01:00+01:00", "2026-03-29T04:00+02:00"))
    body = await get(api, resource, startDate="2026-03-29", endDate="2026-03-30")
    assert body["range"] == {
        "start": "2026-03-29T00:00:00Z".replace("29T00", "28T23"),
        "end": "2026-03-29T22:00:00Z",
        "startLocal": "2026-03-29T00:00:00+01:00",
        "endLocal": "2026-03-30T00:00:00+02:00",
    }
    assert [(b["startLocal"], b["endLocal"]) for b in body["busy"]] == [
        ("2026-03-29T01:00:00+01:00", "2026-03-29T04:00:00+02:00")
    ]
    assert spans(body["busy"]) == [("2026-03-29T00:00:00Z", "2026-03-29T02:00:00Z")]
    autumn = await get(api, resource, startDate="2026-10-25", endDate="2026-10-26", duration=25 * 60)
    assert len(autumn["free"]) == 1  # the 25-hour day is one free interval of 25 hours


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"endDate": "2026-05-31"}, "invalid_range"),
        ({"endDate": "2026-09-01"}, "invalid_range"),
        ({"startDate": "June 1st, 2026"}, "invalid_range"),
        ({"duration": "0"}, "invalid_request"),
        ({"duration": "ten"}, "invalid_request"),
        ({"syncExternal": "perhaps"}, "invalid_request"),
        ({"colour": "blue"}, "invalid_request"),
        ({"startDate": None}, "invalid_request"),
    ],
)
async def test_bad_queries_are_400(api: Api, params: dict[str, Any], code: str) -> None:
    resource = await make_resource(api.deps.sessions)
    body = await get(api, resource, 400, **params)
    assert body["error"]["code"] == code


async def test_another_company_sees_404_and_no_token_401(api: Api) -> None:
    resource = await make_resource(api.deps.sessions)
    query = {"resourceId": resource.id, "startDate": DAY, "endDate": "2026-06-02"}
    async with api.session.get(f"{api.url}/v3/availability", params=query, headers=api.headers("other-co")) as resp:
        assert resp.status == 404
    async with api.session.get(f"{api.url}/v3/availability", params=query) as resp:
        assert resp.status == 401


async def test_a_large_answer_is_complete(api: Api) -> None:
    resource = await make_resource(api.deps.sessions)
    link = await fresh_link(api, resource)
    base = at("2026-06-01T00:00Z")
    rows = [
        ((base + timedelta(minutes=10 * i)).isoformat(), (base + timedelta(minutes=10 * i + 5)).isoformat())
        for i in range(400)
    ]
    await add_busy(api, link, *rows)  # more than THREAD_ABOVE_ROWS: merged off the event loop
    body = await get(api, resource, endDate="2026-06-04")
    assert len(body["busy"]) == 400 and len(body["free"]) == 400  # the first row starts the range
    assert body["busy"][399]["end"] == "2026-06-03T18:35:00Z"


# --- cache ----------------------------------------------------------------------------------


async def test_cached_answer_is_purged_by_a_change(api: Api) -> None:
    resource = await make_resource(api.deps.sessions)
    link = await fresh_link(api, resource)
    assert (await get(api, resource))["cache"] == "miss"
    cached = await get(api, resource)
    assert cached["cache"] == "hit" and cached["busy"] == []
    # A row written without a purge stays invisible (proves the answer really came from the cache)…
    await add_busy(api, link, ("2026-06-01T09:00Z", "2026-06-01T10:00Z"), purge=False)
    assert (await get(api, resource))["busy"] == []
    # …and the purge every sync performs makes the next answer exclude that time.
    await cache.purge(api.deps.redis, api.deps.prefix, [resource.id])
    fresh = await get(api, resource)
    assert fresh["cache"] == "miss"
    assert spans(fresh["busy"]) == [("2026-06-01T09:00:00Z", "2026-06-01T10:00:00Z")]


async def test_concurrent_misses_compute_once(api: Api) -> None:
    resource = await make_resource(api.deps.sessions)
    link = await fresh_link(api, resource)
    await add_busy(api, link, *[(f"2026-06-01T{h:02d}:00Z", f"2026-06-01T{h:02d}:30Z") for h in range(24)])
    bodies = await asyncio.gather(*[get(api, resource) for _ in range(20)])
    outcomes = [b["cache"] for b in bodies]
    assert outcomes.count("miss") == 1 and set(outcomes) <= {"miss", "coalesced", "hit"}, outcomes
    assert all(b["busy"] == bodies[0]["busy"] for b in bodies)


async def test_redis_down_answers_from_postgres(api: Api, http: Any) -> None:
    resource = await make_resource(api.deps.sessions)
    link = await fresh_link(api, resource)
    await add_busy(api, link, ("2026-06-01T09:00Z", "2026-06-01T10:00Z"))
    # Nothing listens on port 1: a real refused connection on every Redis call.
    dead = Redis.from_url("redis://127.0.0.1:1/0", decode_responses=True, socket_connect_timeout=0.2)
    deps = make_deps(api.deps.settings, api.deps.engine, dead, http)
    try:
        async with serve_api(deps) as url:
            began = time.monotonic()
            for _ in range(3):
                body = await get(api, resource, url=url)
                assert body["cache"] == "unavailable"
                assert spans(body["busy"]) == [("2026-06-01T09:00:00Z", "2026-06-01T10:00:00Z")]
            assert time.monotonic() - began < 3
    finally:
        await dead.aclose()
    # With Redis back, the cache serves again.
    await get(api, resource)
    assert (await get(api, resource))["cache"] == "hit"


# --- freshness and the stale policy --------------------------------------------------------


async def _set_settings(
    api: Api, resource: Resource, resource_settings: dict[str, Any], company: dict[str, Any]
) -> None:
    async with api.deps.sessions() as session, session.begin():
        (await session.get(Resource, resource.id)).settings = resource_settings  # type: ignore[union-attr]
        (await session.get(Company, resource.company_id)).settings = company  # type: ignore[union-attr]


async def test_stale_calendar_fails_closed_or_open_as_the_resource_chooses(api: Api) -> None:
    resource = await make_resource(api.deps.sessions)
    fresh = await fresh_link(api, resource)
    old = api.deps.clock.now() - timedelta(hours=2)
    stale = await fresh_link(api, resource, last_synced_at=old)
    await add_busy(api, fresh, ("2026-06-01T09:00Z", "2026-06-01T10:00Z"))

    closed = await get(api, resource)  # config default: closed
    assert closed["freshness"]["policy"] | {"staleAfterSeconds": 0} == {
        "stalePolicy": "closed",
        "source": "config",
        "staleAfterSeconds": 0,
        "applied": "closed",
        "calendars": [stale.id],
    }
    assert spans(closed["busy"]) == [("2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z")]
    assert closed["busy"][0]["sources"] == [{"kind": "policy", "ids": [stale.id]}]
    assert closed["free"] == [] and len(closed["storedBusy"]) == 1
    by_link = {c["linkId"]: c for c in closed["freshness"]["calendars"]}
    assert by_link[stale.id]["stale"] and by_link[stale.id]["reasons"] == ["stale"]
    assert not by_link[fresh.id]["stale"]

    await _set_settings(api, resource, {}, {"stalePolicy": "open"})
    opened = await get(api, resource)
    assert opened["freshness"]["policy"]["applied"] == "open"
    assert opened["freshness"]["policy"]["source"] == "company"
    assert spans(opened["busy"]) == [("2026-06-01T09:00:00Z", "2026-06-01T10:00:00Z")]

    await _set_settings(api, resource, {"staleAfterSeconds": 3 * 3600}, {"stalePolicy": "open"})
    assert (await get(api, resource))["freshness"]["policy"]["applied"] == "none"


async def test_broken_connection_never_reads_as_free(api: Api) -> None:
    resource = await make_resource(api.deps.sessions)
    await fresh_link(api, resource, status="reauth_required")
    await _set_settings(api, resource, {"stalePolicy": "open"}, {})
    opened = await get(api, resource)
    calendar = opened["freshness"]["calendars"][0]
    assert calendar["broken"] and calendar["reasons"] == ["reauth_required"]
    assert opened["freshness"]["policy"]["applied"] == "open"  # said out loud, not silent
    await _set_settings(api, resource, {"stalePolicy": "closed"}, {})
    closed = await get(api, resource)
    assert closed["free"] == [] and closed["freshness"]["policy"]["applied"] == "closed"


async def test_cached_answer_turns_closed_when_its_calendar_goes_stale(api: Api) -> None:
    resource = await make_resource(api.deps.sessions)
    link = await fresh_link(api, resource)
    assert (await get(api, resource))["freshness"]["policy"]["applied"] == "none"
    async with api.deps.sessions() as session, session.begin():
        row = await session.get(CalendarLink, link.id)
        row.last_synced_at = api.deps.clock.now() - timedelta(days=1)  # type: ignore[union-attr]
    body = await get(api, resource)
    assert body["cache"] == "hit" and body["freshness"]["policy"]["applied"] == "closed" and body["free"] == []


# --- explain ------------------------------------------------------------------------------


async def test_explain_names_every_row_and_appointment_covering_an_instant(api: Api) -> None:
    resource = await make_resource(api.deps.sessions, timezone="America/New_York")
    link = await fresh_link(api, resource)
    await add_busy(api, link, ("2026-06-01T09:00Z", "2026-06-01T10:00Z"), ("2026-06-01T11:00Z", "2026-06-01T12:00Z"))
    appt = await add_appointment(api, resource, "2026-06-01T09:30Z", "2026-06-01T10:30Z")

    async def explain(instant: str) -> Any:
        params = {"resourceId": resource.id, "at": instant}
        async with api.session.get(
            f"{api.url}/v3/availability/explain", params=params, headers=api.headers(resource.company_id)
        ) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    body = await explain("2026-06-01T05:45")  # local wall time: 09:45Z
    assert body["at"] == "2026-06-01T09:45:00Z" and body["busy"]
    kinds = {r["kind"]: r for r in body["reasons"]}
    row = kinds["unavailability"]
    assert row["calendar"] == {"linkId": link.id, "calendarId": link.calendar_id, "provider": "google"}
    assert row["providerEventId"].startswith("ev-") and row["rule"] == "busy" and row["syncedAt"]
    assert kinds["appointment"]["id"] == appt
    free = await explain("2026-06-01T10:45:00Z")
    assert free["busy"] is False and free["reasons"] == []
    edge = await explain("2026-06-01T12:00:00Z")  # end is exclusive
    assert edge["reasons"] == []


# --- the cross-process compute lock, driven directly ---------------------------------------


async def test_another_process_holding_the_lock_is_waited_for(api: Api) -> None:
    settings = with_overrides(api.deps.settings, availability={"compute_lock_seconds": 2.0}).availability
    redis, prefix, rid = api.deps.redis, api.deps.prefix, new_id("res")
    key = cache.entry_key(prefix, rid, await cache.current_version(redis, prefix, rid), "d1")
    await redis.set(f"{key}:lock", "other-process", px=2000)
    computed: list[int] = []

    async def compute() -> str:
        computed.append(1)
        return '{"mine":1}'

    async def other_process_finishes() -> None:
        await asyncio.sleep(0.1)
        await redis.set(key, '{"theirs":1}')

    payload, outcome = (
        await asyncio.gather(
            cache.get_or_compute(redis, prefix, rid, "d1", compute, settings=settings), other_process_finishes()
        )
    )[0]
    assert (payload, outcome, computed) == ('{"theirs":1}', "coalesced", [])


async def test_a_lock_holder_that_never_answers_costs_a_bounded_wait(api: Api) -> None:
    settings = with_overrides(api.deps.settings, availability={"compute_lock_seconds": 0.3}).availability
    redis, prefix, rid = api.deps.redis, api.deps.prefix, new_id("res")
    key = cache.entry_key(prefix, rid, await cache.current_version(redis, prefix, rid), "d2")
    await redis.set(f"{key}:lock", "crashed-process", px=60_000)

    async def compute() -> str:
        return '{"mine":1}'

    began = time.monotonic()
    payload, outcome = await cache.get_or_compute(redis, prefix, rid, "d2", compute, settings=settings)
    assert (payload, outcome) == ('{"mine":1}', "miss")
    assert 0.3 <= time.monotonic() - began < 2
    assert await redis.get(key) == '{"mine":1}'


# --- with the sandbox: sync, syncExternal, the deadline ------------------------------------

SANDBOX_NAME = {"google": "google", "outlook": "microsoft"}
LISTING = r"(/events|/calendarView/delta)$"


@pytest.fixture(scope="module")
async def sb_api(settings: Any, engine: Any, redis: Redis, http: Any, sandbox: Any) -> AsyncIterator[Api]:
    """The API with providers pointed at the sandbox and a short just-in-time deadline."""
    base = sandbox_settings(settings, sandbox, "http://127.0.0.1:9")
    deps = make_deps(with_overrides(base, sync={"just_in_time_deadline_seconds": 1.0}), engine, redis, http)
    async with serve_api(deps) as url:
        yield Api(url=url, deps=deps, session=http)
    await sandbox.control.clear_faults()
    await deps.tasks.drain(5.0)


async def connect(api: Api, sandbox: Any, provider: str) -> tuple[Resource, CalendarLink, str]:
    """A resource with an active connection and a read link to a new sandbox user's primary calendar."""
    email = f"avail-{new_id('u')}@calsync.test"
    user = await sandbox.control.create_user(SANDBOX_NAME[provider], email)
    issued = await sandbox.control.issue_tokens(SANDBOX_NAME[provider], email)
    resource = await make_resource(api.deps.sessions)
    conn = await make_connection(
        api.deps.sessions,
        resource=resource,
        provider=provider,
        status="active",
        account_email=email,
        refresh_token_enc=api.deps.cipher.encrypt(issued["refresh_token"]),
    )
    calendar_id = next(c["id"] for c in user["calendars"] if c["primary"])
    link = await make_link(api.deps.sessions, connection=conn, calendar_id=calendar_id, read=True, primary=True)
    return resource, link, email


def event_body(provider: str, start: datetime, end: datetime) -> dict[str, Any]:
    if provider == "google":
        return {"summary": "dentist", "start": {"dateTime": start.isoformat()}, "end": {"dateTime": end.isoformat()}}
    naive = "%Y-%m-%dT%H:%M:%S"
    return {
        "subject": "dentist",
        "start": {"dateTime": start.strftime(naive), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime(naive), "timeZone": "UTC"},
    }


def soon() -> tuple[str, str, datetime]:
    """A query day two days ahead (inside the sync window) and 10:00 UTC on it."""
    day = (datetime.now(UTC) + timedelta(days=2)).date()
    ten = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    return day.isoformat(), (day + timedelta(days=1)).isoformat(), ten


@pytest.mark.parametrize("provider", ["google", "outlook"])
async def test_event_created_after_a_cached_answer_is_excluded_after_its_sync(
    sb_api: Api, sandbox: Any, provider: str
) -> None:
    from jobs.sync import sync_link

    resource, link, email = await connect(sb_api, sandbox, provider)
    await sync_link(sb_api.deps, link.id)
    start, end, ten = soon()
    await get(sb_api, resource, startDate=start, endDate=end)
    assert (await get(sb_api, resource, startDate=start, endDate=end))["cache"] == "hit"

    await sandbox.control.create_event(
        SANDBOX_NAME[provider], email, event_body(provider, ten, ten + timedelta(hours=1))
    )
    stale = await get(sb_api, resource, startDate=start, endDate=end)
    assert stale["cache"] == "hit" and stale["busy"] == []  # nothing told us yet

    outcome = await sync_link(sb_api.deps, link.id)  # what the push (or the poll) triggers
    assert outcome.status == "synced" and outcome.changed
    body = await get(sb_api, resource, startDate=start, endDate=end)
    assert body["cache"] == "miss"
    assert spans(body["busy"]) == [
        (ten.isoformat().replace("+00:00", "Z"), (ten + timedelta(hours=1)).isoformat().replace("+00:00", "Z"))
    ]
    assert all(not (f["start"] < body["busy"][0]["end"] and f["end"] > body["busy"][0]["start"]) for f in body["free"])


@pytest.mark.parametrize("provider", ["google", "outlook"])
async def test_sync_external_excludes_a_new_event_directly(sb_api: Api, sandbox: Any, provider: str) -> None:
    from jobs.sync import sync_link

    resource, link, email = await connect(sb_api, sandbox, provider)
    await sync_link(sb_api.deps, link.id)
    start, end, ten = soon()
    await get(sb_api, resource, startDate=start, endDate=end)
    await sandbox.control.create_event(
        SANDBOX_NAME[provider], email, event_body(provider, ten, ten + timedelta(hours=1))
    )

    body = await get(sb_api, resource, startDate=start, endDate=end, syncExternal=True)
    assert body["syncExternal"]["completed"] is True
    assert body["freshness"]["calendars"][0]["sync"] == {"status": "synced", "changed": True, "error": None}
    assert body["cache"] == "miss"  # the sync's purge bypassed the cached answer
    assert len(body["busy"]) == 1 and body["busy"][0]["start"] == ten.isoformat().replace("+00:00", "Z")

    # Nothing changed since: the just-in-time sync leaves the cache alone.
    again = await get(sb_api, resource, startDate=start, endDate=end, syncExternal=True)
    assert again["cache"] == "hit"
    assert again["freshness"]["calendars"][0]["sync"]["changed"] is False


async def test_deadline_passes_while_the_provider_is_slow(sb_api: Api, sandbox: Any) -> None:
    from jobs.sync import sync_link

    resource, link, email = await connect(sb_api, sandbox, "google")
    await sync_link(sb_api.deps, link.id)
    start, end, ten = soon()
    await sandbox.control.create_event("google", email, event_body("google", ten, ten + timedelta(hours=1)))
    await sandbox.control.add_fault(provider="google", path=LISTING, latency_ms=3000, count=1)

    began = time.monotonic()
    body = await get(sb_api, resource, startDate=start, endDate=end, syncExternal=True)
    elapsed = time.monotonic() - began

    assert elapsed < 2.0, elapsed  # deadline 1 s, never the provider's 3 s
    assert body["syncExternal"]["completed"] is False
    assert body["freshness"]["calendars"][0]["sync"]["status"] == "pending"
    assert body["busy"] == []  # answered from what is stored, and said so
    # The sync goes on in the background; once it lands, its purge shows the event.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        later = await get(sb_api, resource, startDate=start, endDate=end)
        if later["busy"]:
            break
        await asyncio.sleep(0.1)
    assert later["busy"] and later["busy"][0]["start"] == ten.isoformat().replace("+00:00", "Z")


async def test_a_hung_redis_costs_one_timeout_then_is_skipped(api: Api, http: Any) -> None:
    resource = await make_resource(api.deps.sessions)
    await fresh_link(api, resource)
    held: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept, read nothing back: a Redis that hangs

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hung = Redis.from_url(f"redis://127.0.0.1:{port}/0", decode_responses=True)
    settings = with_overrides(api.deps.settings, availability={"redis_timeout_seconds": 0.3})
    deps = make_deps(settings, api.deps.engine, hung, http)
    try:
        async with serve_api(deps) as url:
            began = time.monotonic()
            assert (await get(api, resource, url=url))["cache"] == "unavailable"
            first = time.monotonic() - began
            began = time.monotonic()
            assert (await get(api, resource, url=url))["cache"] == "unavailable"
            second = time.monotonic() - began
        assert 0.3 <= first < 1.5, first
        assert second < 0.25, second  # the breaker skips Redis instead of waiting again
    finally:
        for writer in held:
            writer.close()
        server.close()
        await hung.aclose()


async def test_event_created_after_a_cached_answer_is_excluded_after_its_push(
    settings: Any, engine: Any, redis: Redis, http: Any, sandbox: Any
) -> None:
    from jobs import push, sync
    from tests.jobs.push_env import linked, push_env
    from tests.waiting import until

    async with push_env(settings, engine, redis, http, sandbox) as env:
        cal = await linked(env, "google")
        await sync.sync_link(env.deps, cal.link_id)
        assert (await push.ensure_push(env.deps, cal.link_id)).status == "opened"

        async def proven() -> bool:
            row = await cal.row()
            return row.push_last_message_at is not None and row.push_error is None

        await until(proven, what="the channel's sync message")
        await sync.run_once(env.deps)  # the catch-up sync opening push asks for
        api = Api(url=env.url, deps=env.deps, session=http)
        async with env.deps.sessions() as session:
            resource = await session.get(Resource, cal.resource_id)
        assert resource is not None
        start, end, ten = soon()
        await get(api, resource, startDate=start, endDate=end)
        cached = await get(api, resource, startDate=start, endDate=end)
        assert cached["cache"] == "hit" and cached["busy"] == []
        calendar = cached["freshness"]["calendars"][0]
        assert calendar["pushHealthy"] and not calendar["stale"]

        await cal.add_event(
            ten.strftime("%Y-%m-%dT%H:%M:%SZ"), (ten + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        await until(lambda: _requested(cal), what="a sync request from the push message")

        async def synced() -> bool:  # the request is served once the link's background gap has passed
            return (await sync.run_once(env.deps)).get("synced", 0) > 0

        await until(synced, what="the requested sync")

        body = await get(api, resource, startDate=start, endDate=end)
        assert body["cache"] == "miss"
        assert [b["start"] for b in body["busy"]] == [ten.isoformat().replace("+00:00", "Z")]


async def _requested(cal: Any) -> bool:
    return (await cal.row()).sync_requested_at is not None
