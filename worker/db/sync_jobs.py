"""sync_jobs: createUnavailabilityBulk runs, their progress and per-calendar results."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.tables import SyncJob


async def create_job(
    *,
    session: AsyncSession,
    job_id: str,
    resource_id: str,
    connection_id: int | None,
    start_date: date,
    end_date: date,
    progress: dict[str, Any],
) -> SyncJob:
    """Record a running bulk job."""
    job = SyncJob(
        id=job_id,
        resource_id=resource_id,
        connection_id=connection_id,
        start_date=start_date,
        end_date=end_date,
        status="running",
        progress=progress,
    )
    session.add(job)
    await session.flush()
    return job


async def save_progress(*, session: AsyncSession, job_id: str, progress: dict[str, Any]) -> None:
    await session.execute(update(SyncJob).where(SyncJob.id == job_id).values(progress=progress))


async def finish_job(
    *, session: AsyncSession, job_id: str, status: str, progress: dict[str, Any], error: str | None, now: datetime
) -> None:
    """Mark a job succeeded or failed with its final per-calendar result."""
    stmt = (
        update(SyncJob)
        .where(SyncJob.id == job_id)
        .values(status=status, progress=progress, error=error, finished_at=now)
    )
    await session.execute(stmt)


async def get_job(*, session: AsyncSession, resource_id: str, job_id: str) -> SyncJob | None:
    """A job of this resource (None for another resource's job: indistinguishable from absent)."""
    stmt = (
        select(SyncJob)
        .where(SyncJob.id == job_id, SyncJob.resource_id == resource_id)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()
