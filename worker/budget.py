"""The providers' request budgets, shared by every daemon process through Redis.

Implements `providers.base.RequestBudget`. Budget keys are "google:<user>" (at most
`google.requests_per_second` requests in any sliding second) and "outlook:<mailbox>" (at
most `outlook.max_in_flight` requests in flight). One Lua script decides atomically, on
Redis's clock, so processes on different hosts agree. Interactive requests register as
waiters and background requests yield to them; a 429 (`penalise`) pauses the whole key.
If Redis is unreachable the budget fails open: the provider's own 429s still protect us.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from worker.deps import Deps
from worker.logging import get_logger

log = get_logger(__name__)

# An in-flight slot of a crashed process is freed after this. One slot covers one attempt,
# which the HTTP timeout ends, so budget_for passes that timeout plus a margin: a SIGKILLed
# worker must not block its mailboxes (and, via head-of-line, its whole batch) for minutes.
HOLD_MS = 120_000
HOLD_MARGIN_MS = 5_000
WAITER_MS = 1_000  # an interactive waiter that stopped polling is forgotten after this
MAX_SLEEP_S = 0.25  # re-check at least this often while waiting

# KEYS: slots, waiters, penalty. ARGV: kind, limit, holder, interactive, window_ms/hold_ms, waiter_ms.
# Returns 0 when the slot is granted, else milliseconds worth waiting before trying again.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interactive = ARGV[4] == '1'
if interactive then redis.call('ZADD', KEYS[2], now + tonumber(ARGV[6]), ARGV[3]) end
local penalty = redis.call('PTTL', KEYS[3])
if penalty > 0 then return penalty end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if not interactive and redis.call('ZCARD', KEYS[2]) > 0 then return 20 end
local limit = tonumber(ARGV[2])
local span = tonumber(ARGV[5])
if ARGV[1] == 'rate' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - span)
  if redis.call('ZCARD', KEYS[1]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + span - now)
  end
  redis.call('ZADD', KEYS[1], now, ARGV[3])
else
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= limit then return 10 end
  redis.call('ZADD', KEYS[1], now + span, ARGV[3])
end
redis.call('PEXPIRE', KEYS[1], span * 2)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[6]) * 2)
if interactive then redis.call('ZREM', KEYS[2], ARGV[3]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class Limit:
    """`rate`: at most `count` grants per `span_ms`; `flight`: at most `count` held at once."""

    kind: str
    count: int
    span_ms: int


class RedisBudget:
    """A RequestBudget shared by all processes through Redis."""

    def __init__(
        self, redis: Redis, prefix: str, *, google_rps: float, outlook_in_flight: int, hold_ms: int = HOLD_MS
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}budget:"
        count = max(1, int(google_rps))
        self._limits = {
            "google": Limit("rate", count, max(1, round(1000 * count / google_rps))),
            "outlook": Limit("flight", outlook_in_flight, hold_ms),
        }
        self._script = redis.register_script(_ACQUIRE)
        self._rng = random.Random()

    def limit_for(self, key: str) -> Limit | None:
        """The limit a budget key falls under (by its provider prefix), if any."""
        return self._limits.get(key.partition(":")[0])

    def slot(self, key: str, *, interactive: bool) -> AbstractAsyncContextManager[None]:
        """Hold one request's place in `key`'s budget while the request runs."""
        return self._slot(key, interactive)

    @asynccontextmanager
    async def _slot(self, key: str, interactive: bool) -> AsyncIterator[None]:
        limit = self.limit_for(key)
        if limit is None:
            yield
            return
        holder = uuid.uuid4().hex
        granted = await self._acquire(key, limit, holder, interactive)
        try:
            yield
        finally:
            if granted and limit.kind == "flight":
                await self._release(key, holder)

    async def _acquire(self, key: str, limit: Limit, holder: str, interactive: bool) -> bool:
        keys = [self._key(key, "slots"), self._key(key, "waiters"), self._key(key, "penalty")]
        args: list[str | int] = [limit.kind, limit.count, holder, int(interactive), limit.span_ms, WAITER_MS]
        while True:
            try:
                wait_ms = int(await self._script(keys=keys, args=args))
            except (RedisError, OSError) as exc:
                log.warning("budget.unavailable", error=type(exc).__name__)
                return False
            if wait_ms <= 0:
                return True
            await asyncio.sleep(min(wait_ms / 1000, MAX_SLEEP_S) * self._rng.uniform(1.0, 1.2))

    async def _release(self, key: str, holder: str) -> None:
        try:
            await self._redis.zrem(self._key(key, "slots"), holder)
        except (RedisError, OSError) as exc:  # the slot expires after HOLD_MS anyway
            log.warning("budget.release_failed", error=type(exc).__name__)

    async def penalise(self, key: str, seconds: float) -> None:
        """Pause every process's requests for `key` for `seconds` (never shortening a pause)."""
        ms = max(1, int(seconds * 1000))
        penalty = self._key(key, "penalty")
        try:
            current = await self._redis.pttl(penalty)
            if current < ms:
                await self._redis.set(penalty, "1", px=ms)
        except (RedisError, OSError) as exc:
            log.warning("budget.penalise_failed", error=type(exc).__name__)

    def _key(self, key: str, part: str) -> str:
        return f"{self._prefix}{key}:{part}"


def budget_for(deps: Deps) -> RedisBudget:
    """The process's request budget, configured from settings."""
    return RedisBudget(
        deps.redis,
        deps.prefix,
        google_rps=deps.settings.google.requests_per_second,
        outlook_in_flight=deps.settings.outlook.max_in_flight,
        hold_ms=int(deps.settings.http.timeout_seconds * 1000) + HOLD_MARGIN_MS,
    )
