"""Helpers for the connect tests: the API served with sandbox providers, and a scripted browser.

`serving()` binds a port first so the public URL (and the OAuth redirect URI registered at
the sandbox) is known before the app is built. `Browser` drives the sandbox consent page the
way a person would: GET the authUrl, submit its form, follow the redirect to our callback.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import make_deps, sandbox_settings
from worker.api.app import build_app
from worker.api.auth import mint_token
from worker.config import Settings, with_overrides
from worker.deps import Deps

SANDBOX_NAME = {"google": "google", "outlook": "microsoft"}
CLIENTS = {
    "google": ("sandbox-google-client", "sandbox-google-secret"),
    "microsoft": ("sandbox-ms-client", "sandbox-ms-secret"),
}


@dataclass
class ConnectApi:
    """The control API served with sandbox-backed providers; records every (method, route, status)."""

    url: str
    deps: Deps
    http: aiohttp.ClientSession
    sandbox: Any
    seen: set[tuple[str, str, int]] = field(default_factory=set)
    nonconforming: list[str] = field(default_factory=list)

    def token(self, company_id: str, *, ttl: int = 600) -> str:
        return mint_token(self.deps.settings.auth, company_id=company_id, ttl_seconds=ttl, now=int(time.time()))

    def headers(self, company_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(company_id)}"}

    async def call(
        self, method: str, path: str, company: str | None, *, json: Any = None, expect: int | None = None
    ) -> tuple[int, Any]:
        """One API call as `company`; returns (status, decoded JSON or None)."""
        headers = self.headers(company) if company else {}
        async with self.http.request(method, self.url + path, json=json, headers=headers) as resp:
            body = await resp.json() if resp.content_type == "application/json" else None
            if expect is not None:
                assert resp.status == expect, (resp.status, body)
            return resp.status, body


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def serving(
    settings: Settings,
    engine: AsyncEngine,
    redis: Redis,
    http: aiohttp.ClientSession,
    sandbox: Any,
    *,
    overrides: dict[str, dict[str, Any]] | None = None,
    **deps_kw: Any,
) -> AsyncIterator[ConnectApi]:
    """The API on a pre-bound port, its redirect URI registered for both sandbox clients."""
    sock = _free_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    configured = sandbox_settings(settings, sandbox, url)
    if overrides:
        configured = with_overrides(configured, **overrides)
    for provider, (client_id, secret) in CLIENTS.items():
        await sandbox.control.register_client(provider, client_id, secret, [url + "/oauth/callback"])
    deps = make_deps(configured, engine, redis, http, **deps_kw)
    app = build_app(deps)
    api = ConnectApi(url=url, deps=deps, http=http, sandbox=sandbox)

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        resource = request.match_info.route.resource
        if resource is not None:
            key = (request.method.lower(), resource.canonical, response.status)
            api.seen.add(key)
            if isinstance(response, web.Response) and response.content_type == "application/json":
                problem = nonconformity(*key, json.loads(response.body or b"null"))  # type: ignore[arg-type]
                if problem:
                    api.nonconforming.append(problem)

    app.on_response_prepare.append(record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield api
    finally:
        await deps.tasks.drain(2.0)
        await runner.cleanup()


@dataclass
class CallbackResult:
    status: int
    code: str
    html: str


def consent_form(page: str, page_url: str) -> tuple[str, dict[str, str]]:
    """The consent form's absolute action URL and its hidden fields."""
    action = re.search(r'<form method="post" action="([^"]*)"', page)
    assert action, page
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    return urljoin(page_url, unescape(action.group(1))), {k: unescape(v) for k, v in fields.items()}


async def consent(http: aiohttp.ClientSession, auth_url: str, email: str, *, allow: bool = True) -> str:
    """Open the authUrl, press Allow (or Deny); returns the redirect Location to our callback."""
    async with http.get(auth_url) as resp:
        assert resp.status == 200, await resp.text()
        action, fields = consent_form(await resp.text(), auth_url)
    form = {**fields, "email": email, "decision": "allow" if allow else "deny"}
    async with http.post(action, data=form, allow_redirects=False) as resp:
        assert resp.status == 302, await resp.text()
        return resp.headers["Location"]


async def open_callback(http: aiohttp.ClientSession, location: str) -> CallbackResult:
    """Follow the provider's redirect to /oauth/callback; the outcome code is in the page."""
    async with http.get(location, allow_redirects=False) as resp:
        text = await resp.text()
        assert resp.content_type == "text/html", text
    found = re.search(r'data-code="([^"]*)"', text)
    assert found, text
    return CallbackResult(resp.status, found.group(1), text)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def start(api: ConnectApi, resource_id: str, company: str, provider: str) -> dict[str, Any]:
    """POST externalCalendar: the pending connection with its authUrl."""
    _, body = await api.call(
        "POST", f"/v3/resource/{resource_id}/externalCalendar", company, json={"provider": provider}, expect=201
    )
    return dict(body)


async def connect(api: ConnectApi, resource_id: str, company: str, provider: str, email: str) -> dict[str, Any]:
    """The whole flow: create, consent, callback; returns the connection as GET shows it."""
    created = await start(api, resource_id, company, provider)
    result = await open_callback(api.http, await consent(api.http, created["authUrl"], email))
    assert (result.status, result.code) == (200, "connected"), result.html
    return await connection(api, resource_id, company, created["id"])


async def connection(api: ConnectApi, resource_id: str, company: str, connection_id: int) -> dict[str, Any]:
    """One connection as GET externalCalendars shows it."""
    _, body = await api.call("GET", f"/v3/resource/{resource_id}/externalCalendars", company, expect=200)
    found = [c for c in body["externalCalendars"] if c["id"] == connection_id]
    assert found, body
    return dict(found[0])


def unique_email(tag: str) -> str:
    return f"{tag}-{time.monotonic_ns()}@example.com"


def undeclared(seen: set[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """Observed (method, route, status) triples that /openapi.json does not list explicitly."""
    from worker.api.openapi import document

    paths = document()["paths"]
    return sorted(
        (method, route, status)
        for method, route, status in seen
        if str(status) not in paths.get(route, {}).get(method, {}).get("responses", {})
    )


def nonconformity(method: str, route: str, status: int, body: Any) -> str | None:
    """Why a JSON response does not match its declared schema, or None when it does."""
    import jsonschema_rs

    from worker.api.openapi import document

    doc = document()
    declared = doc["paths"].get(route, {}).get(method, {}).get("responses", {})
    response = declared.get(str(status)) or declared.get("default")
    schema = (response or {}).get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return f"{method} {route} {status}: no JSON schema declared"
    validator = jsonschema_rs.validator_for({**schema, "components": doc["components"]})
    errors = [e.message for e in validator.iter_errors(body)]
    return f"{method} {route} {status}: {errors[:3]}" if errors else None
