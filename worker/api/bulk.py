"""createUnavailabilityBulk and its job status: validate, start the job, wait a bounded time, answer."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

from aiohttp import web

from jobs.bulk import bulk
from worker.api.auth import verify_company
from worker.api.errors import BadRequest, NotFound
from worker.api.keys import DEPS
from worker.db.connections import get_connection
from worker.db.sync_jobs import get_job
from worker.db.tables import SyncJob

routes = web.RouteTableDef()


def _date(request: web.Request, name: str) -> date:
    raw = request.query.get(name)
    if not raw:
        raise BadRequest(f"{name} is required (YYYY-MM-DD)", code="invalid_request")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name}: {raw!r} is not an ISO date (YYYY-MM-DD)", code="invalid_request") from None


def _connection_id(request: web.Request) -> int | None:
    raw = request.query.get("externalCalendarId")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest(f"externalCalendarId: {raw!r} is not an id", code="invalid_request")
    return int(raw)


def _range(request: web.Request) -> tuple[date, date]:
    start, end = _date(request, "startDate"), _date(request, "endDate")
    if end <= start:
        raise BadRequest("endDate must be after startDate", code="invalid_range")
    most = request.app[DEPS].settings.sync.bulk_max_days
    if (end - start).days > most:
        raise BadRequest(f"the range may span at most {most} days", code="range_too_long")
    return start, end


def render_job(job: SyncJob) -> dict[str, Any]:
    """A job as the API shows it: status, range, per-calendar counts and totals."""
    calendars = [{k: v for k, v in e.items() if k != "linkId"} for e in (job.progress or {}).get("calendars", [])]
    done = sum(1 for c in calendars if c["status"] not in ("pending", "running"))
    totals = {k: sum(int(c.get(k) or 0) for c in calendars) for k in ("events", "added", "updated", "removed")}
    return {
        "jobId": job.id,
        "resourceId": job.resource_id,
        "status": job.status,
        "startDate": job.start_date.isoformat(),
        "endDate": job.end_date.isoformat(),
        "progress": {"calendarsDone": done, "calendarsTotal": len(calendars)},
        "calendars": calendars,
        "totals": totals,
        "error": job.error,
        "createdAt": job.created_at.isoformat(),
        "finishedAt": job.finished_at.isoformat() if job.finished_at else None,
    }


@routes.post("/v3/resource/{id}/externalCalendar/createUnavailabilityBulk")
async def create_unavailability_bulk(request: web.Request) -> web.Response:
    """List the resource's read calendars over [startDate, endDate) and reconcile unavailability there.

    200 with per-calendar counts when done within sync.bulk_wait_seconds, else 202 with a job id.
    """
    deps = request.app[DEPS]
    resource_id = request.match_info["id"]
    async with deps.sessions.begin() as session:
        await verify_company(request, session, resource_id)
        start, end = _range(request)
        connection_id = _connection_id(request)
        if connection_id is not None:
            connection = await get_connection(session=session, connection_id=connection_id)
            if connection is None or connection.resource_id != resource_id:
                raise NotFound(f"external calendar {connection_id} not found", code="external_calendar_not_found")
    job_id, task = await bulk(
        deps, resource_id=resource_id, start_date=start, end_date=end, connection_id=connection_id
    )
    await asyncio.wait({task}, timeout=deps.settings.sync.bulk_wait_seconds)
    async with deps.sessions.begin() as session:
        job = await get_job(session=session, resource_id=resource_id, job_id=job_id)
    if job is None:  # its resource was deleted meanwhile
        raise NotFound(f"resource {resource_id} not found", code="resource_not_found")
    body = render_job(job)
    if not task.done():
        body["statusUrl"] = f"/v3/resource/{resource_id}/externalCalendar/syncJobs/{job_id}"
        return web.json_response(body, status=202)
    return web.json_response(body)


@routes.get("/v3/resource/{id}/externalCalendar/syncJobs/{jobId}")
async def get_sync_job(request: web.Request) -> web.Response:
    """A bulk job's progress and, once finished, its result."""
    deps = request.app[DEPS]
    resource_id, job_id = request.match_info["id"], request.match_info["jobId"]
    async with deps.sessions.begin() as session:
        await verify_company(request, session, resource_id)
        job = await get_job(session=session, resource_id=resource_id, job_id=job_id) if _is_uuid(job_id) else None
    if job is None:
        raise NotFound(f"sync job {job_id} not found", code="sync_job_not_found")
    return web.json_response(render_job(job))


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
