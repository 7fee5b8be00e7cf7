"""The availability cache and its purge contract.

Every cache key of a resource embeds that resource's cache version
(`{prefix}avail:ver:{resource_id}`). Purging is one INCR of that version: O(1) whatever
the number of cached ranges, and old entries simply expire. A main API that keeps its own
availability cache can follow the same contract (README, "Cache purge contract").

`get_or_compute` serves an answer from the cache or computes it once: concurrent misses of
one key share one computation in a process (single flight) and, across processes, wait a
bounded time for the one that took a short Redis lock. Redis is an optimisation only: every
call has a short timeout, a failure opens a one-second breaker, and errors become a metric
and a log line while the answer is computed from PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from worker.config import AvailabilitySettings
from worker.logging import get_logger
from worker.metrics import AVAILABILITY_CACHE, CACHE_ERRORS, CACHE_PURGES

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
        CACHE_PURGES.labels("failed").inc(len(ids))
        return False
    CACHE_PURGES.labels("ok").inc(len(ids))
    return True


async def current_version(redis: Redis, prefix: str, resource_id: str) -> int:
    """The resource's cache version (0 before any purge)."""
    value = await redis.get(version_key(prefix, resource_id))
    return int(value or 0)


Compute = Callable[[], Awaitable[str]]

BREAKER_SECONDS = 1.0  # after a Redis failure, skip Redis this long (a hung Redis costs one timeout)
POLL_SECONDS = 0.01  # how often a waiting process looks for another's result
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_broken_until: dict[int, float] = {}
_inflight: dict[str, asyncio.Task[tuple[str, str]]] = {}


class CacheUnavailable(Exception):
    """Redis failed or its breaker is open; the caller computes without the cache."""


async def _call(redis: Redis, op: str, call: Callable[[], Awaitable[Any]], seconds: float) -> Any:
    """One Redis call with a timeout; failures trip the breaker and raise CacheUnavailable."""
    if _broken_until.get(id(redis), 0.0) > time.monotonic():
        raise CacheUnavailable(op)
    try:
        return await asyncio.wait_for(call(), seconds)
    except (RedisError, OSError, TimeoutError) as exc:
        # A slow write of a large answer is not an outage (a busy event loop delays it too);
        # anything else is, and stops Redis calls for a moment.
        if not (op == "set" and isinstance(exc, TimeoutError)):
            _broken_until[id(redis)] = time.monotonic() + BREAKER_SECONDS
        CACHE_ERRORS.labels(op=op).inc()
        log.warning("cache.redis_failed", op=op, error=type(exc).__name__)
        raise CacheUnavailable(op) from None


async def _single_flight(key: str, fill: Callable[[], Awaitable[tuple[str, str]]]) -> tuple[str, str]:
    """Run fill once per key in this process; concurrent callers share its result ("coalesced")."""
    task = _inflight.get(key)
    if task is not None:
        payload, _ = await asyncio.shield(task)
        return payload, "coalesced"
    task = asyncio.ensure_future(fill())
    _inflight[key] = task
    task.add_done_callback(lambda _: _inflight.pop(key, None))
    # Shielded: a caller that gives up must not cancel the computation others wait for.
    return await asyncio.shield(task)


async def get_or_compute(
    redis: Redis, prefix: str, resource_id: str, digest: str, compute: Compute, *, settings: AvailabilitySettings
) -> tuple[str, str]:
    """The cached payload or a fresh one, and how it was served.

    "hit": from Redis; "miss": computed here; "coalesced": computed once by a concurrent
    caller (this process or another) and shared; "unavailable": Redis failed, computed here.
    """
    timeout = settings.redis_timeout_seconds
    try:
        version = await _call(redis, "version", lambda: current_version(redis, prefix, resource_id), timeout)
        key = entry_key(prefix, resource_id, version, digest)
        cached = await _call(redis, "get", lambda: redis.get(key), timeout)
    except CacheUnavailable:
        payload, _ = await _single_flight(f"{prefix}nocache:{resource_id}:{digest}", lambda: _plain(compute))
        AVAILABILITY_CACHE.labels(outcome="unavailable").inc()
        return payload, "unavailable"
    if cached is not None:
        AVAILABILITY_CACHE.labels(outcome="hit").inc()
        return str(cached), "hit"
    payload, outcome = await _single_flight(key, lambda: _fill(redis, key, compute, settings))
    AVAILABILITY_CACHE.labels(outcome=outcome).inc()
    return payload, outcome


async def _plain(compute: Compute) -> tuple[str, str]:
    return await compute(), "unavailable"


async def _fill(redis: Redis, key: str, compute: Compute, settings: AvailabilitySettings) -> tuple[str, str]:
    """Compute under a short cross-process lock and store; or take the lock holder's result."""
    timeout, lock, token = settings.redis_timeout_seconds, f"{key}:lock", secrets.token_hex(8)
    lock_ms = int(settings.compute_lock_seconds * 1000)
    try:
        owner = bool(await _call(redis, "lock", lambda: redis.set(lock, token, nx=True, px=lock_ms), timeout))
    except CacheUnavailable:
        return await compute(), "unavailable"
    if not owner:
        found = await _await_other(redis, key, lock, settings)
        if found is not None:
            return found, "coalesced"
    try:
        payload = await compute()
        await _store(redis, key, payload, settings)
    finally:
        if owner:
            await _release(redis, lock, token, timeout)
    return payload, "miss"


async def _await_other(redis: Redis, key: str, lock: str, settings: AvailabilitySettings) -> str | None:
    """Poll for another process's result while its lock lives, at most compute_lock_seconds."""
    deadline = time.monotonic() + settings.compute_lock_seconds
    while time.monotonic() < deadline:
        try:
            value, locked = await _call(redis, "wait", lambda: _peek(redis, key, lock), settings.redis_timeout_seconds)
        except CacheUnavailable:
            return None
        if value is not None:
            return str(value)
        if not locked:
            return None
        await asyncio.sleep(POLL_SECONDS)
    return None


async def _peek(redis: Redis, key: str, lock: str) -> tuple[Any, Any]:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.exists(lock)
        value, locked = await pipe.execute()
    return value, locked


async def _store(redis: Redis, key: str, payload: str, settings: AvailabilitySettings) -> None:
    ttl = settings.cache_ttl_seconds
    with contextlib.suppress(CacheUnavailable):
        await _call(redis, "set", lambda: redis.set(key, payload, ex=ttl), settings.redis_timeout_seconds)


async def _release(redis: Redis, lock: str, token: str, seconds: float) -> None:
    """Delete the lock only if it is still ours (it may have expired and been retaken)."""
    with contextlib.suppress(CacheUnavailable):
        await _call(redis, "unlock", lambda: redis.eval(_RELEASE, 1, lock, token), seconds)
