"""Faithful in-memory emulators of Google Calendar v3 and Microsoft Graph, over real HTTP.

`start_sandbox()` is the one public entry: it starts the aiohttp app on a port (0 = any
free one) and returns a `Sandbox` with the base URLs a client needs and a
`SandboxControl` client for the `/_sandbox/` routes (documented in `control.py`).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from providers.sandbox.context import ProviderHalf, SandboxContext, SandboxSettings
from providers.sandbox.delivery import Delivery
from providers.sandbox.faults import Faults
from providers.sandbox.requests_log import RequestLog
from providers.sandbox.server import build_app

__all__ = ["Sandbox", "SandboxControl", "SandboxControlError", "SandboxSettings", "start_sandbox"]

log = logging.getLogger(__name__)

HALF_CLASSES = (
    "providers.sandbox.google.half:GoogleHalf",
    "providers.sandbox.microsoft.half:MicrosoftHalf",
)


class SandboxControlError(Exception):
    """A control route answered with an error status."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"sandbox control {status}: {body}")
        self.status = status
        self.body = body


@dataclass
class SandboxControl:
    """Async HTTP client for the control routes; each method mirrors one route."""

    base_url: str
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call a control route and return its JSON (None for 204)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        async with self._session.request(method, f"{self.base_url}/_sandbox/{path}", **kwargs) as resp:
            body = None if resp.status == 204 else await resp.json(content_type=None)
            if resp.status >= 400:
                raise SandboxControlError(resp.status, body)
            return body

    async def close(self) -> None:
        """Close the underlying HTTP session."""
        if self._session is not None:
            await self._session.close()

    async def reset(self) -> None:
        await self.request("POST", "reset")

    async def settings(self, **changes: Any) -> dict[str, Any]:
        return await self.request("POST", "settings", json=changes)

    async def register_client(self, provider: str, client_id: str, client_secret: str, redirect_uris: list[str]) -> Any:
        body = {"provider": provider, "client_id": client_id, "client_secret": client_secret}
        return await self.request("POST", "clients", json={**body, "redirect_uris": redirect_uris})

    async def create_user(self, provider: str, email: str) -> dict[str, Any]:
        return await self.request("POST", "users", json={"provider": provider, "email": email})

    async def add_calendar(self, provider: str, email: str, name: str) -> dict[str, Any]:
        body = {"provider": provider, "email": email, "name": name}
        return await self.request("POST", "calendars", json=body)

    async def issue_tokens(self, provider: str, email: str, scope: str | None = None) -> dict[str, Any]:
        body = {"provider": provider, "email": email, "scope": scope}
        return await self.request("POST", "tokens", json=body)

    async def expire_tokens(self, provider: str | None = None) -> None:
        await self.request("POST", "tokens/expire", json={"provider": provider})

    async def revoke_grant(self, provider: str, email: str) -> None:
        await self.request("POST", "grants/revoke", json={"provider": provider, "email": email})

    async def invalidate_cursors(self, provider: str, email: str | None = None) -> None:
        await self.request("POST", "cursors/invalidate", json={"provider": provider, "email": email})

    async def create_event(
        self, provider: str, email: str, event: dict[str, Any], calendar_id: str | None = None
    ) -> dict[str, Any]:
        body = {"provider": provider, "email": email, "calendar_id": calendar_id, "event": event}
        return await self.request("POST", "events", json=body)

    async def bulk_load(
        self,
        provider: str,
        email: str,
        events: list[dict[str, Any]],
        calendar_id: str | None = None,
    ) -> int:
        body = {"provider": provider, "email": email, "calendar_id": calendar_id, "events": events}
        return (await self.request("POST", "events/bulk", json=body))["created"]

    async def patch_event(
        self,
        provider: str,
        email: str,
        event_id: str,
        patch: dict[str, Any],
        calendar_id: str | None = None,
    ) -> dict[str, Any]:
        body = {"provider": provider, "email": email, "calendar_id": calendar_id, "patch": patch}
        return await self.request("PATCH", f"events/{event_id}", json=body)

    async def delete_event(self, provider: str, email: str, event_id: str, calendar_id: str | None = None) -> None:
        params = {"provider": provider, "email": email}
        if calendar_id is not None:
            params["calendar_id"] = calendar_id
        await self.request("DELETE", f"events/{event_id}", params=params)

    async def list_events(self, provider: str, email: str, calendar_id: str | None = None) -> list[dict[str, Any]]:
        params = {"provider": provider, "email": email}
        if calendar_id is not None:
            params["calendar_id"] = calendar_id
        return (await self.request("GET", "events", params=params))["events"]

    async def add_fault(self, **rule: Any) -> str:
        return (await self.request("POST", "faults", json=rule))["id"]

    async def clear_faults(self) -> None:
        await self.request("DELETE", "faults")

    async def faults(self) -> list[dict[str, Any]]:
        return (await self.request("GET", "faults"))["faults"]

    async def delivery(self, provider: str | None = None, **knobs: Any) -> None:
        await self.request("POST", "delivery", json={"provider": provider, **knobs})

    async def requests(self, provider: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"since": since}
        if provider is not None:
            params["provider"] = provider
        return (await self.request("GET", "requests", params=params))["requests"]

    async def deliveries(self, provider: str | None = None) -> list[dict[str, Any]]:
        params = {"provider": provider} if provider else {}
        return (await self.request("GET", "deliveries", params=params))["deliveries"]

    async def drain(self) -> None:
        await self.request("POST", "deliveries/drain")


@dataclass
class Sandbox:
    """A running sandbox: base URLs, settings, the control client, and stop()."""

    url: str
    settings: SandboxSettings
    control: SandboxControl
    ctx: SandboxContext
    halves: dict[str, ProviderHalf]
    _runner: web.AppRunner = field(repr=False)

    @property
    def google_api(self) -> str:
        return f"{self.url}/calendar/v3"

    @property
    def google_auth_url(self) -> str:
        return f"{self.url}/o/oauth2/v2/auth"

    @property
    def google_token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def google_revoke_url(self) -> str:
        return f"{self.url}/revoke"

    @property
    def google_userinfo_url(self) -> str:
        return f"{self.url}/oauth2/v3/userinfo"

    @property
    def graph_api(self) -> str:
        return f"{self.url}/v1.0"

    @property
    def ms_authority(self) -> str:
        return self.url

    def urls(self) -> dict[str, str]:
        """Every base URL by name (what `calsync sandbox` prints)."""
        names = ["google_api", "google_auth_url", "google_token_url", "google_revoke_url"]
        names += ["google_userinfo_url", "graph_api", "ms_authority"]
        return {name: getattr(self, name) for name in names}

    async def stop(self) -> None:
        """Stop serving, drain deliveries, close sessions."""
        await self.control.close()
        await self._runner.cleanup()
        await self.ctx.delivery.stop()
        for half in self.halves.values():
            close = getattr(half, "close", None)
            if close is not None:
                await close()


def load_halves(ctx: SandboxContext) -> list[ProviderHalf]:
    """Instantiate every provider half whose module exists."""
    halves = []
    for spec in HALF_CLASSES:
        module_name, _, cls_name = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # that half is not written (or not importable) yet
            log.warning("sandbox: %s not mounted: %s", spec, exc)
            continue
        halves.append(getattr(module, cls_name)(ctx))
    return halves


async def start_sandbox(*, host: str = "127.0.0.1", port: int = 0, settings: SandboxSettings | None = None) -> Sandbox:
    """Start the sandbox on host:port (0 = a free port) and return it running."""
    settings = settings or SandboxSettings()

    def now() -> datetime:
        return ctx.clock()  # late-bound: tests may swap ctx.clock

    ctx = SandboxContext(
        base_url="",
        faults=Faults(),
        delivery=Delivery(settings, now),
        requests=RequestLog(now),
        settings=settings,
    )
    halves = load_halves(ctx)
    runner = web.AppRunner(build_app(halves, ctx), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    ctx.base_url = f"http://{host}:{bound}"
    control = SandboxControl(ctx.base_url)
    halves_by_name = {h.name: h for h in halves}
    return Sandbox(ctx.base_url, settings, control, ctx, halves_by_name, runner)
