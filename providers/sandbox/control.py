"""The `/_sandbox/` control routes: how tests, benchmarks and demos steer the sandbox.

JSON in, JSON out. `provider` ("google" | "microsoft") is a body field or a query
parameter. Unknown user/calendar/event → 404, bad body → 400, both as
`{"error": "..."}`. Event bodies are in the provider's own shape.

    POST   /_sandbox/reset               clear state, faults, logs (registered clients stay)
    GET    /_sandbox/settings            current SandboxSettings
    POST   /_sandbox/settings            {field: value, ...} → the changed settings
    POST   /_sandbox/clients             {provider, client_id, client_secret, redirect_uris}
    POST   /_sandbox/users               {provider, email}
                                         → {email, id, calendars: [{id, name, primary}]}
    POST   /_sandbox/calendars           {provider, email, name} → {id, name, primary}
    POST   /_sandbox/tokens              {provider, email, scope?}
                                         → {access_token, refresh_token, expires_in}
    POST   /_sandbox/tokens/expire       {provider?} expire every access token
    POST   /_sandbox/grants/revoke       {provider, email} revoke all the user's grants
    POST   /_sandbox/cursors/invalidate  {provider, email?} sync tokens → 410 / delta error
    GET    /_sandbox/events              ?provider=&email=&calendar_id= → {"events": [...]}
    POST   /_sandbox/events              {provider, email, calendar_id?, event} → event
    POST   /_sandbox/events/bulk         {provider, email, calendar_id?, events: [...]}
                                         → {"created": N} (one push at the end)
    PATCH  /_sandbox/events/{id}         {provider, email, calendar_id?, patch} → event
    DELETE /_sandbox/events/{id}         ?provider=&email=&calendar_id= → 204
    GET    /_sandbox/faults              → {"faults": [rule, ...]}
    POST   /_sandbox/faults              {provider?, method?, path? (regex), status?, body?,
                                          retry_after?, count? | fraction?, seed?,
                                          latency_ms?, reset?, after_commit?} → {"id"}
    DELETE /_sandbox/faults              clear every rule
    POST   /_sandbox/delivery            {provider?, drop?, drop_fraction?, duplicate?,
                                          duplicate_fraction?, delay_ms?, seed?} push knobs
    GET    /_sandbox/requests            ?provider=&since=<seq> → {"requests": [...]}
    GET    /_sandbox/deliveries          ?provider= → {"deliveries": [...]} (one per attempt)
    POST   /_sandbox/deliveries/drain    ?wait_s=10: wait until queued push messages finished

Provider-specific extras live under `/_sandbox/google/...` and `/_sandbox/microsoft/...`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from providers.sandbox.context import ProviderHalf, SandboxContext

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Control:
    """Handlers for the control routes, dispatching to the provider halves."""

    def __init__(self, halves: dict[str, ProviderHalf], ctx: SandboxContext) -> None:
        self.halves = halves
        self.ctx = ctx

    async def body(self, request: web.Request) -> dict[str, Any]:
        """The JSON body (empty for none); a non-object is a 400."""
        if not request.can_read_body:
            return {}
        data = await request.json()
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        return data

    def half(self, request: web.Request, data: dict[str, Any]) -> ProviderHalf:
        """The half named by `provider` in the body or query."""
        name = data.get("provider") or request.query.get("provider")
        if name not in self.halves:
            raise ValueError(f"unknown provider {name!r}; have {sorted(self.halves)}")
        return self.halves[name]

    async def reset(self, request: web.Request) -> web.Response:
        for half in self.halves.values():
            half.reset()
        self.ctx.faults.clear()
        self.ctx.requests.clear()
        self.ctx.delivery.reset()
        return web.json_response({"reset": True})

    async def get_settings(self, request: web.Request) -> web.Response:
        return web.json_response(dataclasses.asdict(self.ctx.settings))

    async def set_settings(self, request: web.Request) -> web.Response:
        data = await self.body(request)
        current = dataclasses.asdict(self.ctx.settings)
        for key, value in data.items():
            if key not in current:
                raise ValueError(f"unknown setting {key!r}")
            if not isinstance(value, type(current[key]) | int):
                raise ValueError(f"setting {key!r} wants {type(current[key]).__name__}")
            setattr(self.ctx.settings, key, type(current[key])(value))
        return web.json_response(dataclasses.asdict(self.ctx.settings))

    async def clients(self, request: web.Request) -> web.Response:
        data = await self.body(request)
        uris = data.get("redirect_uris", [])
        self.half(request, data).register_client(data["client_id"], data["client_secret"], uris)
        return web.json_response({"client_id": data["client_id"], "redirect_uris": uris})

    async def users(self, request: web.Request) -> web.Response:
        data = await self.body(request)
        return web.json_response(self.half(request, data).create_user(data["email"]))

    async def calendars(self, request: web.Request) -> web.Response:
        data = await self.body(request)
        half = self.half(request, data)
        return web.json_response(half.add_calendar(data["email"], data["name"]))

    async def tokens(self, request: web.Request) -> web.Response:
        data = await self.body(request)
        half = self.half(request, data)
        return web.json_response(half.issue_tokens(data["email"], data.get("scope")))

    async def expire_tokens(self, request: web.Request) -> web.Response:
        data = await self.body(request)
        name = data.get("provider") or request.query.get("provider")
        for half in self.halves.values():
            if name in (None, half.name):
                half.expire_access_tokens()
        return web.json_response({"expired": True})

    async def revoke_grants(self, request: web.Request) -> web.Response:
        data = await self.body(request)
        self.half(request, data).revoke_grant(data["email"])
        return web.json_response({"revoked": True})

    async def invalidate_cursors(self, request: web.Request) -> web.Response:
        data = await self.body(request)
        self.half(request, data).invalidate_cursors(data.get("email"))
        return web.json_response({"invalidated": True})

    async def list_events(self, request: web.Request) -> web.Response:
        q = request.query
        half = self.half(request, {})
        return web.json_response({"events": half.list_events(q["email"], q.get("calendar_id"))})

    async def create_event(self, request: web.Request) -> web.Response:
        data = await self.body(request)
        half = self.half(request, data)
        event = half.user_create_event(data["email"], data.get("calendar_id"), data["event"])
        return web.json_response(event)

    async def bulk(self, request: web.Request) -> web.Response:
        data = await self.body(request)
        half = self.half(request, data)
        created = half.bulk_load(data["email"], data.get("calendar_id"), data["events"])
        return web.json_response({"created": created})

    async def patch_event(self, request: web.Request) -> web.Response:
        data = await self.body(request)
        half = self.half(request, data)
        event_id = request.match_info["event_id"]
        event = half.user_patch_event(data["email"], data.get("calendar_id"), event_id, data["patch"])
        return web.json_response(event)

    async def delete_event(self, request: web.Request) -> web.Response:
        q = request.query
        half = self.half(request, {})
        half.user_delete_event(q["email"], q.get("calendar_id"), request.match_info["event_id"])
        return web.Response(status=204)

    async def list_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"faults": [r.public() for r in self.ctx.faults.rules]})

    async def add_fault(self, request: web.Request) -> web.Response:
        rule = self.ctx.faults.add(await self.body(request))
        return web.json_response({"id": rule.id})

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.ctx.faults.clear()
        return web.json_response({"cleared": True})

    async def delivery(self, request: web.Request) -> web.Response:
        data = await self.body(request)
        provider = data.pop("provider", None)
        self.ctx.delivery.configure(provider, data)
        return web.json_response({"provider": provider, **data})

    async def requests(self, request: web.Request) -> web.Response:
        q = request.query
        entries = self.ctx.requests.select(q.get("provider"), int(q.get("since", "0")))
        return web.json_response({"requests": entries})

    async def deliveries(self, request: web.Request) -> web.Response:
        entries = self.ctx.delivery.select(request.query.get("provider"))
        return web.json_response({"deliveries": entries})

    async def drain(self, request: web.Request) -> web.Response:
        await self.ctx.delivery.drain(float(request.query.get("wait_s", "10")))
        return web.json_response({"drained": True})


@web.middleware
async def control_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map KeyError → 404 and ValueError/TypeError → 400 on control routes only."""
    if not request.path.startswith("/_sandbox/"):
        return await handler(request)
    try:
        return await handler(request)
    except KeyError as exc:
        return web.json_response({"error": f"not found: {exc}"}, status=404)
    except (ValueError, TypeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)


def add_routes(app: web.Application, halves: dict[str, ProviderHalf], ctx: SandboxContext) -> None:
    """Mount the control routes listed in the module docstring."""
    c = Control(halves, ctx)
    app.middlewares.append(control_errors)
    app.router.add_routes(
        [
            web.post("/_sandbox/reset", c.reset),
            web.get("/_sandbox/settings", c.get_settings),
            web.post("/_sandbox/settings", c.set_settings),
            web.post("/_sandbox/clients", c.clients),
            web.post("/_sandbox/users", c.users),
            web.post("/_sandbox/calendars", c.calendars),
            web.post("/_sandbox/tokens", c.tokens),
            web.post("/_sandbox/tokens/expire", c.expire_tokens),
            web.post("/_sandbox/grants/revoke", c.revoke_grants),
            web.post("/_sandbox/cursors/invalidate", c.invalidate_cursors),
            web.get("/_sandbox/events", c.list_events),
            web.post("/_sandbox/events", c.create_event),
            web.post("/_sandbox/events/bulk", c.bulk),
            web.patch("/_sandbox/events/{event_id}", c.patch_event),
            web.delete("/_sandbox/events/{event_id}", c.delete_event),
            web.get("/_sandbox/faults", c.list_faults),
            web.post("/_sandbox/faults", c.add_fault),
            web.delete("/_sandbox/faults", c.clear_faults),
            web.post("/_sandbox/delivery", c.delivery),
            web.get("/_sandbox/requests", c.requests),
            web.get("/_sandbox/deliveries", c.deliveries),
            web.post("/_sandbox/deliveries/drain", c.drain),
        ]
    )
