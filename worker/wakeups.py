"""A Redis signal that work was recorded, so sleeping workers start at once.

The durable record is always in PostgreSQL; a lost wake-up only delays work until the next
sweep, it never loses it.
"""

from __future__ import annotations

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
