"""Fault injection for the sandbox's provider routes, as an aiohttp middleware.

A `FaultRule` matches requests by provider, HTTP method and a path regex, and then
fires on the next `count` matches, on a seeded `fraction` of them, or on all of them.
When it fires it may wait (`latency_ms`), then either answer with an error (`status`,
`body` or the provider's own error body, `Retry-After`), or drop the connection
(`reset`). With `after_commit` the real handler runs first and the reply is lost
afterwards: the "write succeeded but the client never heard" case. Rules never apply
to the `/_sandbox/` control routes.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorRenderer = Callable[[int, web.Request], dict[str, Any]]
ProviderOf = Callable[[web.Request], str | None]

CONTROL_PREFIX = "/_sandbox/"


DROPPED = web.RequestKey("sandbox_dropped", bool)
RESET_STATUS = 499  # never sent; marks a dropped connection in the request log


@dataclass
class FaultRule:
    """One fault plan; see the module docstring for the semantics of each field."""

    provider: str | None = None
    method: str | None = None
    path: str | None = None
    status: int | None = None
    body: dict[str, Any] | None = None
    retry_after: float | None = None
    count: int | None = None
    fraction: float | None = None
    latency_ms: int = 0
    reset: bool = False
    after_commit: bool = False
    seed: int | None = None
    id: str = ""
    fired: int = 0
    _pattern: re.Pattern[str] | None = field(default=None, repr=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.path is not None:
            self._pattern = re.compile(self.path)
        self._rng = random.Random(self.seed if self.seed is not None else 0)

    def matches(self, provider: str | None, method: str, path: str) -> bool:
        """Whether this rule covers the request (before count/fraction are consulted)."""
        if self.provider is not None and self.provider != provider:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        return self._pattern is None or self._pattern.search(path) is not None

    def take(self) -> bool:
        """Decide whether the rule fires for one matching request, consuming a count."""
        if self.count is not None:
            if self.count <= 0:
                return False
            self.count -= 1
        elif self.fraction is not None and self._rng.random() >= self.fraction:
            return False
        self.fired += 1
        return True

    def public(self) -> dict[str, Any]:
        """The rule as JSON for GET /_sandbox/faults."""
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


RULE_FIELDS = {
    "provider",
    "method",
    "path",
    "status",
    "body",
    "retry_after",
    "count",
    "fraction",
    "latency_ms",
    "reset",
    "after_commit",
    "seed",
}


class Faults:
    """The live set of fault rules plus per-provider error renderers."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self.renderers: dict[str, ErrorRenderer] = {}
        self._ids = itertools.count(1)

    def add(self, spec: dict[str, Any]) -> FaultRule:
        """Add a rule from its JSON form; unknown keys are a ValueError."""
        unknown = set(spec) - RULE_FIELDS
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        rule = FaultRule(**spec)
        if rule.status is None and not rule.reset and not rule.latency_ms:
            raise ValueError("a fault needs status, reset or latency_ms")
        rule.id = f"f{next(self._ids)}"
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Drop every rule."""
        self.rules.clear()

    def pick(self, provider: str | None, method: str, path: str) -> FaultRule | None:
        """The first rule that matches and fires for this request, if any."""
        for rule in self.rules:
            if rule.matches(provider, method, path) and rule.take():
                return rule
        return None

    def error_response(self, rule: FaultRule, provider: str | None, request: web.Request) -> web.Response:
        """The injected error reply: the rule's body or the provider's own error body."""
        status = rule.status or 500
        body = rule.body
        if body is None:
            renderer = self.renderers.get(provider or "")
            body = renderer(status, request) if renderer else {"error": {"code": status}}
        headers = {}
        if rule.retry_after is not None:
            headers["Retry-After"] = f"{rule.retry_after:g}"
        return web.json_response(body, status=status, headers=headers)

    def middleware(self, provider_of: ProviderOf) -> Callable[..., Awaitable[web.StreamResponse]]:
        """An aiohttp middleware applying the rules to provider routes."""

        @web.middleware
        async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith(CONTROL_PREFIX):
                return await handler(request)
            provider = provider_of(request)
            rule = self.pick(provider, request.method, request.path)
            if rule is None:
                return await handler(request)
            if rule.latency_ms:
                await asyncio.sleep(rule.latency_ms / 1000)
            if rule.after_commit:
                response = await handler(request)
                if rule.reset:
                    return drop_connection(request)
                return response if rule.status is None else self.error_response(rule, provider, request)
            if rule.reset:
                return drop_connection(request)
            if rule.status is None:
                return await handler(request)
            return self.error_response(rule, provider, request)

        return fault_middleware


def drop_connection(request: web.Request) -> web.Response:
    """Close the socket without answering, so the client sees a reset.

    The returned response is never written (the transport is gone); aiohttp skips it
    quietly, whereas raising would log a spurious server error.
    """
    transport = request.transport
    if transport is not None:
        transport.abort()
    request[DROPPED] = True
    return web.Response(status=RESET_STATUS)
