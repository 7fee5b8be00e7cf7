"""Housekeeping jobs: the heartbeat that shows the scheduler runs."""

from __future__ import annotations

from worker.deps import Deps
from worker.metrics import SCHEDULER_HEARTBEATS, SCHEDULER_LAST_HEARTBEAT


async def heartbeat(deps: Deps) -> None:
    """Record that the scheduler is alive (metric; also what /status shows)."""
    SCHEDULER_HEARTBEATS.inc()
    SCHEDULER_LAST_HEARTBEAT.set(deps.clock.now().timestamp())
