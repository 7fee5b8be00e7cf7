"""A bounded log of every provider API request the sandbox received, for test assertions."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from providers.sandbox.faults import CONTROL_PREFIX, DROPPED

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ProviderOf = Callable[[web.Request], str | None]

MAX_ENTRIES = 100_000  # enough for a benchmark run; older entries fall off


class RequestLog:
    """Every request (provider, method, path, query, status, timestamp) with a rising seq."""

    def __init__(self, clock: Callable[[], datetime], maxlen: int = MAX_ENTRIES) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._clock = clock
        self._seq = itertools.count(1)

    def record(self, provider: str | None, request: web.Request, status: int | str) -> None:
        """Append one entry."""
        self.entries.append(
            {
                "seq": next(self._seq),
                "provider": provider,
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "status": status,
                "timestamp": self._clock().isoformat(),
            }
        )

    def select(self, provider: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        """Entries with seq > since, optionally for one provider."""
        return [e for e in self.entries if e["seq"] > since and (provider is None or e["provider"] == provider)]

    def clear(self) -> None:
        """Forget every entry (sequence numbers keep rising)."""
        self.entries.clear()

    def middleware(self, provider_of: ProviderOf) -> Callable[..., Awaitable[web.StreamResponse]]:
        """An aiohttp middleware recording provider requests (control routes are skipped)."""

        @web.middleware
        async def log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith(CONTROL_PREFIX):
                return await handler(request)
            provider = provider_of(request)
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                self.record(provider, request, exc.status)
                raise
            except Exception:
                self.record(provider, request, 500)
                raise
            self.record(provider, request, "reset" if request.get(DROPPED) else response.status)
            return response

        return log_middleware
