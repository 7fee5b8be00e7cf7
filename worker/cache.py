"""The availability cache and its purge contract.

Every cache key of a resource embeds that resource's cache version
(`{prefix}avail:ver:{resource_id}`). Purging is one INCR of that version: O(1) whatever
the number of cached ranges, and old entries simply expire. A main API that keeps its own
availability cache can follow the same contract (README, "Cache purge contract").
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from worker.logging import get_logger

log = get_logger(__name__)

ENTRY_TTL_SECONDS = 300  # bounds staleness even if a purge is lost while Redis is down


def version_key(prefix: str, resource_id: str) -> str:
    return f"{prefix}avail:ver:{resource_id}"


def entry_key(prefix: str, resource_id: str, version: int, digest: str) -> str:
    return f"{prefix}avail:{resource_id}:v{version}:{digest}"


async def purge(redis: Redis, prefix: str, resource_ids: Iterable[str]) -> bool:
    """Invalidate every cached availability answer of these resources; False if Redis failed."""
    ids = sorted(set(resource_ids))
    if not ids:
        return True
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for resource_id in ids:
                pipe.incr(version_key(prefix, resource_id))
            await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("cache.purge_failed", resources=len(ids), error=type(exc).__name__)
        return False
    return True


async def current_version(redis: Redis, prefix: str, resource_id: str) -> int:
    """The resource's cache version (0 before any purge)."""
    value = await redis.get(version_key(prefix, resource_id))
    return int(value or 0)
