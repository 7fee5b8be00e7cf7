"""Outbound push deliveries (Google channel messages, Graph notifications and validations).

`Delivery.send` schedules a POST as a background task, so the API handler that caused a
change never waits on the receiver. Knobs per provider (or for all) drop, duplicate or
delay messages; failed attempts are retried per a `RetryPolicy` with exponential backoff
scaled down from the providers' hours to `SandboxSettings.delivery_retry_base`. Every
attempt lands in the delivery log for read-back. `Delivery.call` is the synchronous
variant (used for Graph's validation handshake): awaited, never dropped, returns the body.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from providers.sandbox.context import SandboxSettings

STOP_GRACE = 1.0  # seconds stop() waits for in-flight deliveries before cancelling them
DRAIN_WAIT = 10.0  # seconds drain() waits by default: enough for scaled-down retries
MAX_LOG = 50_000  # bounded read-back


@dataclass(frozen=True)
class RetryPolicy:
    """How a provider judges a receiver's answer (status None = timeout or connection error)."""

    ok: Callable[[int], bool]
    retry: Callable[[int | None], bool]
    timeout: float = 10.0

    @classmethod
    def google(cls) -> RetryPolicy:
        """Google: 200/201/202/204/102 delivered; 500/502/503/504 and no answer retried."""
        return cls(
            ok=lambda s: s in {102, 200, 201, 202, 204},
            retry=lambda s: s is None or s in {500, 502, 503, 504},
        )

    @classmethod
    def graph(cls, timeout: float) -> RetryPolicy:
        """Graph: any 2xx within the timeout delivered; anything else retried."""
        return cls(ok=lambda s: 200 <= s < 300, retry=lambda s: True, timeout=timeout)


@dataclass
class Knobs:
    """Drop, duplicate and delay settings for one provider (or all)."""

    drop: int = 0  # drop the next N messages
    drop_fraction: float = 0.0
    duplicate: int = 0  # send the next N messages twice
    duplicate_fraction: float = 0.0
    delay_ms: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False)

    def take_drop(self) -> bool:
        """Whether the next message is dropped (consumes a count)."""
        if self.drop > 0:
            self.drop -= 1
            return True
        return self.drop_fraction > 0 and self.rng.random() < self.drop_fraction

    def take_duplicate(self) -> bool:
        """Whether the next message is sent twice (consumes a count)."""
        if self.duplicate > 0:
            self.duplicate -= 1
            return True
        return self.duplicate_fraction > 0 and self.rng.random() < self.duplicate_fraction


KNOB_FIELDS = {"drop", "drop_fraction", "duplicate", "duplicate_fraction", "delay_ms", "seed"}


@dataclass
class Message:
    """One outbound POST."""

    provider: str
    url: str
    headers: dict[str, str]
    body: bytes
    policy: RetryPolicy
    id: int = 0


class Delivery:
    """Sends push messages over one ClientSession and records every attempt."""

    def __init__(self, settings: SandboxSettings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.log: list[dict[str, Any]] = []
        self.knobs: dict[str | None, Knobs] = {}
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)

    def configure(self, provider: str | None, spec: dict[str, Any]) -> None:
        """Set the knobs for one provider (None = any provider without its own)."""
        unknown = set(spec) - KNOB_FIELDS
        if unknown:
            raise ValueError(f"unknown delivery fields: {sorted(unknown)}")
        seed = spec.pop("seed", 0)
        self.knobs[provider] = Knobs(**spec, rng=random.Random(seed))

    def reset(self) -> None:
        """Forget knobs and the log and cancel queued deliveries (they belong to the old state)."""
        self.knobs.clear()
        self.log.clear()
        for task in list(self._tasks):
            task.cancel()

    def _knobs_for(self, provider: str) -> Knobs:
        return self.knobs.get(provider) or self.knobs.get(None) or Knobs()

    def _session_or_new(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def send(
        self,
        provider: str,
        url: str,
        *,
        headers: dict[str, str],
        body: bytes = b"",
        policy: RetryPolicy,
    ) -> None:
        """Queue a message; knobs decide whether it goes out zero, one or two times."""
        message = Message(provider, url, headers, body, policy, next(self._ids))
        knobs = self._knobs_for(provider)
        if knobs.take_drop():
            self._record(message, attempt=0, status=None, outcome="dropped")
            return
        copies = 2 if knobs.take_duplicate() else 1
        for _ in range(copies):
            task = asyncio.get_running_loop().create_task(self._deliver(message, knobs.delay_ms))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, message: Message, delay_ms: int) -> None:
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        for attempt in range(1, self.settings.delivery_max_attempts + 1):
            status, _, error = await self._post(message)
            if status is not None and message.policy.ok(status):
                self._record(message, attempt, status, "delivered")
                return
            last = attempt == self.settings.delivery_max_attempts
            if not message.policy.retry(status) or last:
                self._record(message, attempt, status, "failed", error)
                return
            self._record(message, attempt, status, "retrying", error)
            await asyncio.sleep(self.settings.delivery_retry_base * 2 ** (attempt - 1))

    async def _post(self, message: Message) -> tuple[int | None, str, str | None]:
        timeout = aiohttp.ClientTimeout(total=message.policy.timeout)
        try:
            async with self._session_or_new().post(
                message.url, data=message.body, headers=message.headers, timeout=timeout
            ) as resp:
                return resp.status, await resp.text(), None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, "", f"{type(exc).__name__}: {exc}"

    async def call(
        self,
        provider: str,
        url: str,
        *,
        headers: dict[str, str],
        body: bytes = b"",
        wait_s: float,
    ) -> tuple[int | None, str]:
        """POST once and wait for the answer (status None on timeout/error), logged."""
        policy = RetryPolicy(ok=lambda s: 200 <= s < 300, retry=lambda s: False, timeout=wait_s)
        message = Message(provider, url, headers, body, policy, next(self._ids))
        status, text, error = await self._post(message)
        ok = status is not None and policy.ok(status)
        self._record(message, 1, status, "delivered" if ok else "failed", error)
        return status, text

    def _record(
        self,
        message: Message,
        attempt: int,
        status: int | None,
        outcome: str,
        error: str | None = None,
    ) -> None:
        if len(self.log) >= MAX_LOG:
            del self.log[: MAX_LOG // 10]
        self.log.append(
            {
                "message_id": message.id,
                "provider": message.provider,
                "url": message.url,
                "headers": dict(message.headers),
                "body": message.body.decode("utf-8", "replace"),
                "attempt": attempt,
                "status": status,
                "outcome": outcome,
                "error": error,
                "timestamp": self._clock().isoformat(),
            }
        )

    def select(self, provider: str | None = None) -> list[dict[str, Any]]:
        """Log entries, optionally for one provider."""
        return [e for e in self.log if provider is None or e["provider"] == provider]

    async def drain(self, wait_s: float = DRAIN_WAIT) -> None:
        """Wait until every queued delivery finished (or wait_s passed)."""
        deadline = asyncio.get_running_loop().time() + wait_s
        while self._tasks:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            await asyncio.wait(set(self._tasks), timeout=remaining)

    async def stop(self) -> None:
        """Drain briefly, cancel stragglers, close the session."""
        await self.drain(STOP_GRACE)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
