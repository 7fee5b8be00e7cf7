"""GET /v3/availability (busy and free time, cached) and /v3/availability/explain (why busy).

The busy/free part of an answer depends only on stored rows, so it is cached per resource,
range and duration under the resource's cache version (`worker.cache`). Freshness and the
stale policy depend on the clock and on link state, so they are evaluated on every request
(one small query) and laid over the cached part: a calendar that goes stale while an
answer sits in the cache still turns the answer closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobs.sync import sync_resource
from worker import cache
from worker.api.auth import verify_company
from worker.api.errors import BadRequest
from worker.api.keys import DEPS
from worker.availability import (
    Busy,
    Interval,
    RangeError,
    Source,
    free_between,
    merge_busy,
    parse_instant,
    resolve_range,
)
from worker.db import availability as repo
from worker.db.tables import Resource
from worker.deps import Deps
from worker.freshness import Freshness, LinkState, Policy, Verdict, assess_all, resolve_policy
from worker.logging import get_logger

log = get_logger(__name__)
routes = web.RouteTableDef()

MAX_DURATION_MINUTES = 400 * 24 * 60
THREAD_ABOVE_ROWS = 300  # larger answers are merged and rendered in a worker thread
Q = TypeVar("Q", bound=BaseModel)


class AvailabilityQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resource_id: str = Field(alias="resourceId", min_length=1, max_length=64)
    start_date: str = Field(alias="startDate", min_length=10, max_length=40)
    end_date: str = Field(alias="endDate", min_length=10, max_length=40)
    sync_external: bool = Field(False, alias="syncExternal")
    duration: int | None = Field(None, ge=1, le=MAX_DURATION_MINUTES)


class ExplainQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resource_id: str = Field(alias="resourceId", min_length=1, max_length=64)
    at: str = Field(min_length=10, max_length=40)


def _query(request: web.Request, model: type[Q]) -> Q:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "query"
        raise BadRequest(f"{field}: {err['msg']}", code="invalid_request") from None


def _zone(resource: Resource) -> ZoneInfo:
    try:
        return ZoneInfo(resource.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("availability.bad_timezone", resource_id=resource.id, timezone=resource.timezone)
        return ZoneInfo("UTC")


def _utc(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _times(start: datetime, end: datetime, zone: ZoneInfo) -> dict[str, str]:
    """An interval in UTC and in the resource's zone (ISO 8601 with offset)."""
    return {
        "start": _utc(start),
        "end": _utc(end),
        "startLocal": start.astimezone(zone).isoformat(),
        "endLocal": end.astimezone(zone).isoformat(),
    }


class _Renderer:
    """Renders instants once each: a busy block's end is the next free interval's start."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.seen: dict[datetime, tuple[str, str]] = {}

    def instant(self, dt: datetime) -> tuple[str, str]:
        found = self.seen.get(dt)
        if found is None:
            found = self.seen[dt] = (_utc(dt), dt.astimezone(self.zone).isoformat())
        return found

    def times(self, start: datetime, end: datetime) -> dict[str, Any]:
        (s, s_local), (e, e_local) = self.instant(start), self.instant(end)
        return {"start": s, "end": e, "startLocal": s_local, "endLocal": e_local}


def _sources(sources: Sequence[Source]) -> list[dict[str, Any]]:
    """Sources grouped by kind and calendar, each group listing its row ids."""
    if len(sources) == 1:  # the common case, built directly (thousands per answer)
        return [_group(sources[0])]
    groups: dict[tuple[str, int | None], dict[str, Any]] = {}
    for src in sources:
        group = groups.get((src.kind, src.link_id))
        if group is None:
            groups[(src.kind, src.link_id)] = _group(src)
        else:
            group["ids"].append(src.id)
    return list(groups.values())


def _group(src: Source) -> dict[str, Any]:
    if src.link_id is None:
        return {"kind": src.kind, "ids": [src.id]}
    calendar = {"linkId": src.link_id, "calendarId": src.calendar_id, "provider": src.provider}
    return {"kind": src.kind, "ids": [src.id], "calendar": calendar}


def _busy(block: Busy, render: _Renderer) -> dict[str, Any]:
    entry = render.times(block.start, block.end)
    entry["sources"] = _sources(block.sources)
    return entry


async def _stored_answer(deps: Deps, resource_id: str, span: Interval, duration: int | None, zone: ZoneInfo) -> str:
    """Busy and free time from stored rows, as the JSON fragment the cache keeps."""
    async with deps.sessions.begin() as session:
        rows = await repo.busy_rows(session=session, resource_id=resource_id, start=span.start, end=span.end)
        appts = await repo.confirmed_appointments(
            session=session, resource_id=resource_id, start=span.start, end=span.end
        )
    items = [(r.start_at, r.end_at, Source("unavailability", r.id, r.link_id, r.calendar_id, r.provider)) for r in rows]
    items += [(a.start_at, a.end_at, Source("appointment", a.id)) for a in appts]
    if len(items) > THREAD_ABOVE_ROWS:
        # Tens of milliseconds of pure CPU: off the event loop, so other answers and Redis
        # timeouts are not held up behind it.
        return await asyncio.to_thread(_render_answer, items, span, duration, zone)
    return _render_answer(items, span, duration, zone)


def _render_answer(
    items: list[tuple[datetime, datetime, Source]], span: Interval, duration: int | None, zone: ZoneInfo
) -> str:
    """Merge, find free time and render the JSON fragment (pure)."""
    busy = merge_busy(items, span.start, span.end)
    min_length = timedelta(minutes=duration) if duration else None
    free = free_between(busy, span.start, span.end, min_length)
    render = _Renderer(zone)
    body = {"busy": [_busy(b, render) for b in busy], "free": [render.times(f.start, f.end) for f in free]}
    return json.dumps(body, separators=(",", ":"))


def _digest(span: Interval, duration: int | None, zone: ZoneInfo) -> str:
    raw = f"{span.start.isoformat()}|{span.end.isoformat()}|{duration}|{zone.key}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


async def just_in_time(deps: Deps, resource_id: str) -> dict[int, dict[str, Any]]:
    """The just-in-time sync (jobs.sync.sync_resource), by link id; never outlives the deadline."""
    deadline = deps.settings.sync.just_in_time_deadline_seconds
    try:
        # The sync job bounds its own wait; the margin covers its bookkeeping queries.
        results = await asyncio.wait_for(sync_resource(deps, resource_id, deadline=deadline), deadline + 0.5)
    except TimeoutError:
        return {}
    return {r.link_id: {"status": r.status, "changed": r.changed, "error": r.error} for r in results}


def _calendar(f: Freshness, sync: dict[int, dict[str, Any]] | None) -> dict[str, Any]:
    link = f.link
    entry: dict[str, Any] = {
        "linkId": link.link_id,
        "calendarId": link.calendar_id,
        "name": link.name,
        "provider": link.provider,
        "connectionStatus": link.connection_status,
        "lastSyncedAt": _utc(link.last_synced_at) if link.last_synced_at else None,
        "lastKnownGood": _utc(f.last_known_good) if f.last_known_good else None,
        "pushHealthy": f.push_healthy,
        "stale": f.stale,
        "broken": f.broken,
        "reasons": list(f.reasons),
        "consecutiveFailures": link.consecutive_failures,
    }
    if sync is not None:
        # A link missing from the results was not finished before the deadline.
        entry["sync"] = sync.get(link.link_id, {"status": "pending", "changed": False, "error": None})
    return entry


def _policy(policy: Policy, verdict: Verdict) -> dict[str, Any]:
    return {
        "stalePolicy": policy.mode,
        "source": policy.source,
        "staleAfterSeconds": policy.stale_after.total_seconds(),
        "applied": verdict.applied,
        "calendars": list(verdict.link_ids),
    }


def _closed(fragment: str, span: Interval, verdict: Verdict, zone: ZoneInfo) -> str:
    """Fail closed: the whole range is busy because of the named calendars; stored busy kept aside."""
    stored = json.loads(fragment)
    block = {**_times(span.start, span.end, zone), "sources": [{"kind": "policy", "ids": list(verdict.link_ids)}]}
    body = {"busy": [block], "free": [], "storedBusy": stored["busy"]}
    return json.dumps(body, separators=(",", ":"))


async def _context(request: web.Request, resource_id: str) -> tuple[Resource, Policy, ZoneInfo]:
    """verifyToken + verifyCompany, then the resource's stale policy and zone."""
    deps = request.app[DEPS]
    async with deps.sessions.begin() as session:
        resource = await verify_company(request, session, resource_id)
        company = await repo.company_settings(session=session, company_id=resource.company_id)
    a = deps.settings.availability
    policy = resolve_policy(
        resource.settings or {}, company, default_mode=a.stale_policy, default_stale=a.stale_after_seconds
    )
    return resource, policy, _zone(resource)


async def _read_links(deps: Deps, resource_id: str) -> list[LinkState]:
    async with deps.sessions.begin() as session:
        return await repo.read_links(session=session, resource_id=resource_id)


def _sync_summary(
    deps: Deps, sync: dict[int, dict[str, Any]], calendars: Sequence[Freshness], ms: float
) -> dict[str, Any]:
    finished = all(sync.get(f.link.link_id, {}).get("status", "pending") != "pending" for f in calendars)
    return {"deadlineSeconds": deps.settings.sync.just_in_time_deadline_seconds, "elapsedMs": ms, "completed": finished}


@routes.get("/v3/availability")
async def availability(request: web.Request) -> web.Response:
    """Busy and free intervals of a resource in a range, with freshness and the policy applied."""
    q = _query(request, AvailabilityQuery)
    deps = request.app[DEPS]
    resource, policy, zone = await _context(request, q.resource_id)
    try:
        span = resolve_range(q.start_date, q.end_date, zone, max_days=deps.settings.availability.max_range_days)
    except RangeError as exc:
        raise BadRequest(str(exc), code="invalid_range") from None
    began = time.perf_counter()
    sync = await just_in_time(deps, resource.id) if q.sync_external else None
    sync_ms = round((time.perf_counter() - began) * 1000, 1)
    # Link state and the cached part are independent reads: one round trip instead of two.
    (fragment, outcome), links = await asyncio.gather(
        cache.get_or_compute(
            deps.redis,
            deps.prefix,
            resource.id,
            _digest(span, q.duration, zone),
            lambda: _stored_answer(deps, resource.id, span, q.duration, zone),
            settings=deps.settings.availability,
        ),
        _read_links(deps, resource.id),
    )
    now = deps.clock.now()
    calendars, verdict = assess_all(links, now=now, policy=policy, start=span.start, end=span.end)
    if verdict.applied == "closed":
        fragment = _closed(fragment, span, verdict, zone)
    head: dict[str, Any] = {
        "resourceId": resource.id,
        "timezone": zone.key,
        "range": _times(span.start, span.end, zone),
        "durationMinutes": q.duration,
        "computedAt": _utc(now),
        "cache": outcome,
        "freshness": {"calendars": [_calendar(f, sync) for f in calendars], "policy": _policy(policy, verdict)},
    }
    if sync is not None:
        head["syncExternal"] = _sync_summary(deps, sync, calendars, sync_ms)
    # Splice the cached fragment in as text: no re-parse of thousands of intervals per hit.
    text = json.dumps(head, separators=(",", ":"))[:-1] + "," + fragment[1:]
    return web.Response(text=text, content_type="application/json")


@routes.get("/v3/availability/explain")
async def explain(request: web.Request) -> web.Response:
    """Every stored row and appointment that makes an instant busy, with calendar and rule."""
    q = _query(request, ExplainQuery)
    deps = request.app[DEPS]
    resource, policy, zone = await _context(request, q.resource_id)
    try:
        at = parse_instant(q.at, zone)
    except RangeError as exc:
        raise BadRequest(str(exc), code="invalid_instant") from None
    async with deps.sessions.begin() as session:
        rows = await repo.unavailability_at(session=session, resource_id=resource.id, at=at)
        appts = await repo.appointments_at(session=session, resource_id=resource.id, at=at)
        links = await repo.read_links(session=session, resource_id=resource.id)
    now = deps.clock.now()
    calendars, verdict = assess_all(links, now=now, policy=policy, start=at, end=at + timedelta(microseconds=1))
    reasons = [_explain_row(row, calendar_id, provider, zone) for row, calendar_id, provider in rows]
    reasons += [_explain_appointment(appt, link_id, event_id, zone) for appt, link_id, event_id in appts]
    body = {
        "resourceId": resource.id,
        "at": _utc(at),
        "atLocal": at.astimezone(zone).isoformat(),
        "busy": bool(reasons) or verdict.applied == "closed",
        "reasons": reasons,
        "freshness": {"calendars": [_calendar(f, None) for f in calendars], "policy": _policy(policy, verdict)},
    }
    return web.json_response(body)


def _explain_row(row: Any, calendar_id: str, provider: str, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "kind": "unavailability",
        "id": row.id,
        **_times(row.start_at, row.end_at, zone),
        "allDay": row.all_day,
        "calendar": {"linkId": row.link_id, "calendarId": calendar_id, "provider": provider},
        "providerEventId": row.provider_event_id,
        "showAs": row.show_as,
        "rule": row.rule,
        "syncedAt": _utc(row.synced_at),
    }


def _explain_appointment(appt: Any, link_id: int | None, event_id: str | None, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "kind": "appointment",
        "id": appt.id,
        **_times(appt.start_at, appt.end_at, zone),
        "title": appt.title,
        "version": appt.version,
        "updatedAt": _utc(appt.updated_at),
        "writeEvent": {"linkId": link_id, "providerEventId": event_id} if link_id is not None else None,
    }
