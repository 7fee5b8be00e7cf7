"""Helpers shared by the Microsoft sandbox tests: a Graph HTTP caller and a webhook receiver.

Imported by the test_microsoft_* modules (pytest puts this directory on sys.path); it
holds no tests itself.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

WINDOW = {"startDateTime": "2026-11-30T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z"}


def timed(start: str, end: str, tz: str = "UTC", **fields: Any) -> dict[str, Any]:
    """A Graph event body with local start/end in one zone."""
    return {
        "start": {"dateTime": start, "timeZone": tz},
        "end": {"dateTime": end, "timeZone": tz},
        **fields,
    }


@dataclass
class Reply:
    """One Graph answer."""

    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Graph:
    """A minimal Graph client: bearer token, JSON in and out, nothing hidden."""

    base: str
    token: str
    email: str
    session: aiohttp.ClientSession = field(default_factory=aiohttp.ClientSession)

    async def call(self, method: str, path: str, **kwargs: Any) -> Reply:
        """Call a path under /v1.0 (or an absolute URL) and decode the answer."""
        url = path if path.startswith("http") else self.base + path
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        async with self.session.request(method, url, headers=headers, **kwargs) as resp:
            text = await resp.text()
            body = await resp.json(content_type=None) if text else None
            return Reply(resp.status, body, dict(resp.headers))

    async def close(self) -> None:
        """Close the HTTP session."""
        await self.session.close()


async def new_graph(sandbox: Any, scope: str | None = None) -> Graph:
    """A fresh mailbox with a token, as a Graph caller."""
    email = f"u-{uuid.uuid4().hex[:10]}@contoso.test"
    await sandbox.control.create_user("microsoft", email)
    tokens = await sandbox.control.issue_tokens("microsoft", email, scope)
    return Graph(sandbox.graph_api, tokens["access_token"], email)


async def wait_for(check: Callable[[], bool], within: float = 5.0) -> None:
    """Poll until check() holds, failing after the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1:0 that answers validations and records notifications.

    `validation` is "echo" (correct), "wrong", "encoded", "slow" or "forbidden";
    `fail_next` makes that many notification POSTs answer 500 first.
    """

    validation: str = "echo"
    fail_next: int = 0
    notify_delay: float = 0.0
    notifications: list[dict[str, Any]] = field(default_factory=list)
    validations: list[str] = field(default_factory=list)
    attempts: int = 0
    url: str = ""
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if "validationToken" in request.query:
            return await self._validate(request)
        self.attempts += 1
        if self.notify_delay:
            await asyncio.sleep(self.notify_delay)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=500)
        self.notifications.append({"path": request.path, **(await request.json())})
        return web.Response(status=202)

    async def _validate(self, request: web.Request) -> web.Response:
        token = request.query["validationToken"]
        self.validations.append(token)
        if self.validation == "slow":
            await asyncio.sleep(2)
        if self.validation == "forbidden":
            return web.Response(status=403)
        answer = {"wrong": "nope", "encoded": quote(token, safe="")}.get(self.validation, token)
        return web.Response(text=answer, content_type="text/plain")

    async def start(self) -> Receiver:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    def values(self, path: str | None = None) -> list[dict[str, Any]]:
        """Every notification item received (optionally on one path)."""
        return [v for n in self.notifications if path in (None, n["path"]) for v in n["value"]]
