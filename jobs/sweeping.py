"""The long-running sweep shared by the sync and write engines.

The scheduler starts a sweep every SHIFT_SECONDS and each runs one second less, so exactly
one loop is alive per process and a loop that died is replaced within a shift. Each batch
runs as a background task: when shutdown stops the loop, a batch in flight still finishes
within the grace period instead of being rolled back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from worker.deps import Deps
from worker.logging import get_logger
from worker.wakeups import WakeUps

log = get_logger(__name__)

SHIFT_SECONDS = 30
Batch = Callable[[Deps], Coroutine[Any, Any, dict[str, int]]]


async def sweep(
    deps: Deps,
    *,
    name: str,
    kind: str,
    batch: Batch,
    interval: float,
    busy: Callable[[dict[str, int]], bool],
    seconds: float = SHIFT_SECONDS - 1,
) -> None:
    """Run `batch` whenever woken on `kind` or every `interval`, for `seconds`; no pause while `busy`."""
    until = time.monotonic() + seconds
    async with WakeUps(deps.redis, deps.prefix, kind) as woken:
        while time.monotonic() < until:
            try:
                counts = await asyncio.shield(deps.tasks.spawn(batch(deps), name=f"{name}.batch"))
            except Exception as exc:  # the database or Redis is down: try again next tick
                log.warning(f"{name}.sweep_failed", error=type(exc).__name__)
                counts = {}
            if busy(counts):
                continue  # more is due: look again at once
            await woken.wait(min(interval, max(0.0, until - time.monotonic())))
