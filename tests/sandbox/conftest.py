"""Fixtures for the sandbox's own tests: one sandbox per session, reset before each test."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from providers.sandbox import Sandbox, SandboxSettings, start_sandbox


@pytest.fixture(scope="session")
async def sandbox_server() -> AsyncIterator[Sandbox]:
    """The running sandbox, shared by the session."""
    sb = await start_sandbox()
    yield sb
    await sb.stop()


@pytest.fixture
async def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The shared sandbox with all state, faults and logs cleared."""
    await sandbox_server.control.reset()
    for f in dataclasses.fields(SandboxSettings):  # defaults again, in the same object
        setattr(sandbox_server.settings, f.name, f.default)
    return sandbox_server


@dataclass
class GoogleUser:
    """A sandbox Google user with a token, and a tiny authenticated HTTP helper."""

    sb: Sandbox
    email: str
    token: str
    refresh_token: str
    session: aiohttp.ClientSession

    async def call(
        self, method: str, path: str, *, token: str | None = None, **kwargs: Any
    ) -> tuple[int, Any, dict[str, str]]:
        """Call the Calendar API; returns (status, JSON or None, headers)."""
        headers = {"Authorization": f"Bearer {token or self.token}", **kwargs.pop("headers", {})}
        url = f"{self.sb.google_api}{path}"
        async with self.session.request(method, url, headers=headers, **kwargs) as resp:
            text = await resp.text()
            body = await resp.json(content_type=None) if text else None
            return resp.status, body, dict(resp.headers)

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call and assert a 2xx; return the JSON body."""
        status, body, _ = await self.call(method, path, **kwargs)
        assert 200 <= status < 300, (status, body)
        return body


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp client session for the test."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def guser(sandbox: Sandbox, http: aiohttp.ClientSession) -> GoogleUser:
    """A fresh Google user with a full-calendar-scope token."""
    email = f"u{uuid.uuid4().hex[:8]}@example.test"
    await sandbox.control.create_user("google", email)
    tokens = await sandbox.control.issue_tokens("google", email)
    return GoogleUser(sandbox, email, tokens["access_token"], tokens["refresh_token"], http)


@dataclass
class Receiver:
    """A local HTTP endpoint that records push messages and answers with `status`."""

    url: str
    received: list[dict[str, str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give, then 200


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A push receiver on 127.0.0.1:0."""
    rec = Receiver("")

    async def handle(request: web.Request) -> web.Response:
        rec.received.append(dict(request.headers))
        return web.Response(status=rec.statuses.pop(0) if rec.statuses else 200)

    app = web.Application()
    app.router.add_post("/push", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/push"
    yield rec
    await runner.cleanup()
