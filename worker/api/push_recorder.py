"""Group commit for push messages: many concurrent webhook requests, one SQL statement.

A webhook hands its link id to the provider's recorder and waits until the request is
recorded (so the provider only hears 2xx for a durable record). One flush runs at a time;
whatever arrived while it ran is the next batch, so batches grow exactly as fast as the
database slows down, and a quiet receiver records each message on its own at once.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiohttp import web

from worker import wakeups
from worker.db import push as repo
from worker.deps import Deps
from worker.metrics import WEBHOOK_NOTIFICATIONS_COALESCED, WEBHOOK_NOTIFICATIONS_IGNORED

NOTE_EVERY_SECONDS = 60.0  # "a message arrived" is a write: under a storm once a minute is plenty


@dataclass
class _Waiting:
    link_ids: Sequence[int]
    number: int | None
    done: asyncio.Future[None]


@dataclass
class ChangeRecorder:
    """Records change messages of one provider for one app, in batches."""

    deps: Deps
    provider: str
    _queue: list[_Waiting] = field(default_factory=list)
    _flushing: bool = False

    async def record(self, link_ids: Sequence[int], number: int | None = None) -> None:
        """Record a sync request for each link (unless pending); returns once it is committed."""
        waiting = _Waiting(link_ids, number, asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        if not self._flushing:
            self._flushing = True
            self.deps.tasks.spawn(self._flush(), name=f"push.record.{self.provider}")
        await asyncio.shield(waiting.done)  # a client hanging up must not cancel others' batch

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    wake = await self._write(batch)
                except Exception as exc:  # the requests answer 500 and the provider retries
                    _settle(batch, exc)
                    continue
                _settle(batch, None)  # answer first: the wake-up is best effort anyway
                if wake:
                    await wakeups.wake(self.deps.redis, self.deps.prefix, wakeups.SYNC)
        finally:
            self._flushing = False

    async def _write(self, batch: list[_Waiting]) -> bool:
        """One statement for the batch; True if sync workers should be woken."""
        ids = [i for w in batch for i in w.link_ids]
        numbers = [w.number for w in batch if w.number is not None]
        async with self.deps.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            noted = await repo.note_changes(
                conn=conn,
                link_ids=sorted(set(ids)),
                now=self.deps.clock.now(),
                note_every_seconds=NOTE_EVERY_SECONDS,
                number=max(numbers) if numbers else None,
            )
        self._count(ids, noted)
        # A request recorded while its link syncs is served after that sync by the sweep's own
        # tick: waking workers now would only start sync after sync during a storm.
        return any(n.fresh and not n.syncing for n in noted)

    def _count(self, ids: list[int], noted: list[repo.Noted]) -> None:
        read = {n.link_id for n in noted if n.read}
        messages = sum(1 for i in ids if i in read)
        fresh = sum(1 for n in noted if n.fresh)
        if messages > fresh:
            WEBHOOK_NOTIFICATIONS_COALESCED.labels(self.provider).inc(messages - fresh)
        if len(ids) > messages:
            WEBHOOK_NOTIFICATIONS_IGNORED.labels(self.provider, "not_read").inc(len(ids) - messages)


def _settle(batch: list[_Waiting], exc: Exception | None) -> None:
    for waiting in batch:
        if waiting.done.done():
            continue
        if exc is None:
            waiting.done.set_result(None)
        else:
            waiting.done.set_exception(exc)


_recorders: weakref.WeakKeyDictionary[web.Application, dict[str, ChangeRecorder]] = weakref.WeakKeyDictionary()


def recorder_for(app: web.Application, deps: Deps, provider: str) -> ChangeRecorder:
    """The app's recorder for a provider (created on first use)."""
    by_provider = _recorders.setdefault(app, {})
    if provider not in by_provider:
        by_provider[provider] = ChangeRecorder(deps, provider)
    return by_provider[provider]
