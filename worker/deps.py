"""Deps: the frozen bundle of long-lived resources handed to jobs and to the web app."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from worker.clock import Clock
from worker.config import Settings
from worker.crypto import TokenCipher


class BackgroundTasks:
    """Tasks started by requests or jobs that shutdown must wait for (bounded) or cancel."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: set[asyncio.Task[Any]] = set()
        self.stopping = False

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def track_loop(self, task: asyncio.Task[Any]) -> None:
        """A scheduler loop (a sweep): idle waiting, so shutdown cancels it at once."""
        self._loops.add(task)
        task.add_done_callback(self._loops.discard)

    async def drain(self, grace: float) -> None:
        """Stop the loops, let running tasks finish within `grace` seconds, then cancel the rest."""
        self.stopping = True
        loops = set(self._loops)
        for loop in loops:
            loop.cancel()
        if loops:
            await asyncio.gather(*loops, return_exceptions=True)
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


@dataclass(frozen=True)
class Deps:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    http: aiohttp.ClientSession
    clock: Clock
    cipher: TokenCipher
    worker_id: str
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks)

    @property
    def prefix(self) -> str:
        """The Redis key prefix every key of ours starts with."""
        return self.settings.redis.prefix
