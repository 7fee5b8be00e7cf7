"""The only module that touches APScheduler: job ids, triggers, coalescing, jitter."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from jobs import housekeeping, notify, push, sync, write
from worker.deps import Deps

HEARTBEAT_SECONDS = 15  # often enough for an alert on "no heartbeat for a minute"
GAUGES_SECONDS = 30  # DB-backed gauges: a few aggregate queries; fresh within a 1-minute alert window


@dataclass(frozen=True)
class Periodic:
    id: str
    func: Callable[[Deps], Awaitable[object]]
    seconds: float
    jitter: float = 0.0


def periodic_jobs(deps: Deps) -> list[Periodic]:
    """Every recurring job of the daemon; each is a plain async function of Deps."""
    return [
        Periodic("heartbeat", housekeeping.heartbeat, HEARTBEAT_SECONDS),
        Periodic("gauges", housekeeping.refresh_gauges, GAUGES_SECONDS, jitter=5),
        Periodic("notify", notify.sweep, deps.settings.notify.sweep_seconds),
        Periodic("sync", sync.sweep, sync.SHIFT_SECONDS),
        Periodic("push", push.run_once, deps.settings.push.sweep_seconds, jitter=1),
        Periodic("write", write.sweep, write.SHIFT_SECONDS),
    ]


async def _run(func: Callable[[Deps], Awaitable[object]], deps: Deps) -> None:
    """Run one job as a tracked loop: shutdown cancels it quietly instead of mid-log."""
    task = asyncio.current_task()
    if task is not None:
        deps.tasks.track_loop(task)
    try:
        await func(deps)
    except asyncio.CancelledError:
        if not deps.tasks.stopping:
            raise


def build_scheduler(deps: Deps) -> AsyncIOScheduler:
    """An AsyncIOScheduler with every periodic job; a job never overlaps itself."""
    scheduler = AsyncIOScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
    )
    for job in periodic_jobs(deps):
        scheduler.add_job(
            _run,
            "interval",
            seconds=job.seconds,
            jitter=job.jitter or None,
            args=[job.func, deps],
            id=job.id,
            next_run_time=deps.clock.now(),
        )
    return scheduler
