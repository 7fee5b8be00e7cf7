"""A Redis signal that work was recorded, so sleeping workers start at once.

The durable record is always in PostgreSQL; a lost wake-up only delays work until the next
sweep, it never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib

from redis.asyncio import Redis
from redis.exceptions import RedisError

SYNC = "sync"
OUTBOX = "outbox"


def channel(prefix: str, kind: str) -> str:
    return f"{prefix}wake:{kind}"


async def wake(redis: Redis, prefix: str, kind: str = SYNC) -> None:
    """Tell every worker that `kind` work is due (best effort)."""
    with contextlib.suppress(RedisError, OSError):  # the periodic sweep still finds the work
        await redis.publish(channel(prefix, kind), "1")


class WakeUps:
    """A subscription to one wake-up channel; `wait` returns on a signal or after a timeout.

    Without Redis it degrades to a plain timer: work is found by the next sweep instead.
    """

    def __init__(self, redis: Redis, prefix: str, kind: str) -> None:
        self._channel = channel(prefix, kind)
        self._pubsub = redis.pubsub(ignore_subscribe_messages=True)
        self._ok = False

    async def __aenter__(self) -> WakeUps:
        try:
            await self._pubsub.subscribe(self._channel)
            self._ok = True
        except (RedisError, OSError):
            self._ok = False
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()

    async def wait(self, seconds: float) -> None:
        if self._ok:
            try:
                await self._pubsub.get_message(timeout=seconds)
                return
            except (RedisError, OSError):
                self._ok = False
        await asyncio.sleep(seconds)
