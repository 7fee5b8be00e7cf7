"""Graph v1.0 /subscriptions handlers: create (with the validation handshake), list, renew, delete.

https://learn.microsoft.com/graph/api/subscription-post-subscriptions . Parsing and
rendering only; rules live in `subscriptions.py`, outbound calls in `notify.py`.
"""

from __future__ import annotations

from aiohttp import web

from providers.sandbox.context import SandboxContext
from providers.sandbox.microsoft import subscriptions as subs
from providers.sandbox.microsoft.grants import Grants
from providers.sandbox.microsoft.notify import Notifier
from providers.sandbox.microsoft.state import GraphState
from providers.sandbox.microsoft.wire import READ_SCOPES, Caller, caller, graph_handler, json_body

METADATA = "https://graph.microsoft.com/v1.0/$metadata"


class SubscriptionsApi:
    """The /v1.0/subscriptions routes of the Microsoft half."""

    def __init__(
        self,
        ctx: SandboxContext,
        state: GraphState,
        grants: Grants,
        store: subs.Subscriptions,
        notifier: Notifier,
    ) -> None:
        self.ctx = ctx
        self.state = state
        self.grants = grants
        self.store = store
        self.notifier = notifier

    def routes(self) -> list[web.RouteDef]:
        """Every subscription route, wrapped to render Graph errors."""
        h = graph_handler
        return [
            web.post("/v1.0/subscriptions", h(self.create)),
            web.get("/v1.0/subscriptions", h(self.list)),
            web.get("/v1.0/subscriptions/{sub_id}", h(self.get)),
            web.patch("/v1.0/subscriptions/{sub_id}", h(self.renew)),
            web.delete("/v1.0/subscriptions/{sub_id}", h(self.delete)),
            web.post("/v1.0/subscriptions/{sub_id}/reauthorize", h(self.reauthorize)),
        ]

    def _caller(self, request: web.Request) -> Caller:
        who = caller(request, self.grants, self.state)
        who.require(READ_SCOPES)
        return who

    async def create(self, request: web.Request) -> web.Response:
        """POST /subscriptions → 201 once both URLs passed the validation handshake."""
        who = self._caller(request)
        body = await json_body(request)
        sub = subs.build(
            body,
            user_id=who.box.id,
            application_id=who.token.grant.client_id,
            calendar_ids=set(who.box.calendars),
            default_calendar_id=who.box.default_calendar_id,
            now=self.ctx.clock(),
            max_minutes=self.ctx.settings.subscription_max_minutes,
            allow_http=self.ctx.settings.allow_http_push,
        )
        await self.notifier.validate(sub.notification_url)
        if sub.lifecycle_url is not None:
            await self.notifier.validate(sub.lifecycle_url)
        self.store.add(sub, self.ctx.clock())
        return web.json_response(sub.json(), status=201)

    async def list(self, request: web.Request) -> web.Response:
        """GET /subscriptions: the caller's subscriptions."""
        who = self._caller(request)
        value = [s.json() for s in self.store.for_user(who.box.id)]
        for item in value:
            item.pop("@odata.context", None)
        return web.json_response({"@odata.context": f"{METADATA}#subscriptions", "value": value})

    async def get(self, request: web.Request) -> web.Response:
        """GET /subscriptions/{id}."""
        who = self._caller(request)
        return web.json_response(self.store.get(request.match_info["sub_id"], who.box.id).json())

    async def renew(self, request: web.Request) -> web.Response:
        """PATCH /subscriptions/{id} with a new expirationDateTime → 200."""
        who = self._caller(request)
        sub = self.store.get(request.match_info["sub_id"], who.box.id)
        body = await json_body(request)
        now = self.ctx.clock()
        if sub.expires <= now:
            raise subs.GraphError(404, "ResourceNotFound", f"The object was not found: subscription '{sub.id}'.")
        if "expirationDateTime" in body:
            sub.expires = subs.expiry(body["expirationDateTime"], now, self.ctx.settings.subscription_max_minutes)
        return web.json_response(sub.json())

    async def delete(self, request: web.Request) -> web.Response:
        """DELETE /subscriptions/{id} → 204."""
        who = self._caller(request)
        self.store.get(request.match_info["sub_id"], who.box.id)
        self.store.remove(request.match_info["sub_id"])
        return web.Response(status=204)

    async def reauthorize(self, request: web.Request) -> web.Response:
        """POST /subscriptions/{id}/reauthorize → 204 (expiry unchanged)."""
        who = self._caller(request)
        self.store.get(request.match_info["sub_id"], who.box.id)
        return web.Response(status=204)
