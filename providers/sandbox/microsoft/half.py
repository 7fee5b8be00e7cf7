"""The Microsoft half of the sandbox: Graph calendar + identity platform behind `ProviderHalf`.

Wires state, grants, subscriptions and the notifier to the Graph, subscription and
identity routes, and implements the control methods (acting as the user, so
notifications follow). Extras live under `/_sandbox/microsoft/`:

    POST /_sandbox/microsoft/lifecycle      {subscription_id, lifecycleEvent} → 202
    POST /_sandbox/microsoft/grants/expire  {email} refresh tokens fail with AADSTS700082
    GET  /_sandbox/microsoft/subscriptions  ?email= → {"subscriptions": [...]}
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from providers.sandbox.context import SandboxContext
from providers.sandbox.microsoft import events as ev
from providers.sandbox.microsoft import render
from providers.sandbox.microsoft.errors import (
    AadError,
    GraphError,
    aad_error_body,
    graph_error_body,
)
from providers.sandbox.microsoft.grants import DEFAULT_CLIENT_ID, DEFAULT_SCOPE, Grants
from providers.sandbox.microsoft.graph import GraphApi
from providers.sandbox.microsoft.graph_subscriptions import SubscriptionsApi
from providers.sandbox.microsoft.identity import Identity
from providers.sandbox.microsoft.notify import Notifier
from providers.sandbox.microsoft.state import Calendar, GraphState, Mailbox
from providers.sandbox.microsoft.subscriptions import Subscriptions


@contextmanager
def as_control_errors() -> Iterator[None]:
    """Turn Graph errors into the control surface's 404 (KeyError) and 400 (ValueError)."""
    try:
        yield
    except GraphError as err:
        if err.status == 404:
            raise KeyError(err.message) from err
        raise ValueError(f"{err.status} {err.code}: {err.message}") from err


def calendar_summary(calendar: Calendar) -> dict[str, Any]:
    """A calendar as the control surface reports it."""
    return {"id": calendar.id, "name": calendar.name, "primary": calendar.is_default}


class MicrosoftHalf:
    """Microsoft Graph calendar and identity platform emulator."""

    name = "microsoft"

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.state = GraphState(lambda: ctx.clock())
        self.grants = Grants(ctx.settings, lambda: ctx.clock())
        self.subscriptions = Subscriptions()
        self.notifier = Notifier(ctx, self.subscriptions)
        self.graph = GraphApi(self.state, self.grants, self.notifier)
        self.subscriptions_api = SubscriptionsApi(ctx, self.state, self.grants, self.subscriptions, self.notifier)
        self.identity = Identity(self.grants, self.state, self._ensure_user)

    # -- wiring ------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        """Mount Graph v1.0 and the identity platform at Microsoft's own paths."""
        routes = self.graph.routes() + self.subscriptions_api.routes() + self.identity.routes()
        app.router.add_routes([*routes, self.graph.fallback()])

    def add_control_routes(self, app: web.Application) -> None:
        """Mount the Microsoft-only control extras (see the module docstring)."""
        app.router.add_routes(
            [
                web.post("/_sandbox/microsoft/lifecycle", self._lifecycle),
                web.post("/_sandbox/microsoft/grants/expire", self._expire_refresh),
                web.get("/_sandbox/microsoft/subscriptions", self._list_subscriptions),
            ]
        )

    def error_body(self, status: int, request: web.Request) -> dict[str, Any]:
        """The body of an injected fault: AADSTS on the identity paths, Graph's elsewhere."""
        if "/oauth2/v2.0/" not in request.path:
            return graph_error_body(status, client_request_id=request.headers.get("client-request-id"))
        err = AadError(70000, status=status)
        err.error = "temporarily_unavailable" if status >= 500 else "invalid_request"
        err.description = f"The service returned status {status}."
        return aad_error_body(err)

    # -- users, clients, tokens ----------------------------------------------------

    def _box(self, email: str) -> Mailbox:
        return self.state.mailbox(email)

    def _ensure_user(self, email: str) -> str:
        return self.state.create_mailbox(email).id

    def reset(self) -> None:
        """Forget mailboxes, grants and subscriptions (registered clients stay)."""
        self.state.reset()
        self.grants.reset()
        self.subscriptions.reset()

    def register_client(self, client_id: str, client_secret: str, redirect_uris: list[str]) -> None:
        """Register an app (redirect URIs accumulate)."""
        self.grants.register(client_id, client_secret, redirect_uris)

    def create_user(self, email: str) -> dict[str, Any]:
        """A mailbox with its default calendar "Calendar"."""
        box = self.state.create_mailbox(email)
        return {
            "email": box.email,
            "id": box.id,
            "calendars": [calendar_summary(c) for c in box.calendars.values()],
        }

    def add_calendar(self, email: str, name: str) -> dict[str, Any]:
        """Another calendar for a user."""
        return calendar_summary(self.state.add_calendar(self._box(email), name))

    def issue_tokens(self, email: str, scope: str | None) -> dict[str, Any]:
        """Tokens as if the user had consented to the default client."""
        grant = self.grants.new_grant(self._box(email).id, DEFAULT_CLIENT_ID, scope or DEFAULT_SCOPE)
        return self.grants.tokens(grant)

    def revoke_grant(self, email: str) -> None:
        """Withdraw consent: refresh fails with AADSTS50173, access tokens get 401."""
        self.grants.revoke_user(self._box(email).id)

    def expire_access_tokens(self) -> None:
        """Every access token is expired from now on."""
        self.grants.expire_access()

    def invalidate_cursors(self, email: str | None) -> None:
        """Delta and skip tokens of one user (or all) answer 410 SyncStateNotFound."""
        boxes = [self._box(email)] if email else list(self.state.mailboxes.values())
        for box in boxes:
            self.state.invalidate_cursors(box)

    # -- events as the user edits them ---------------------------------------------

    def user_create_event(self, email: str, calendar_id: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """Create an event as the user; subscribers are notified."""
        box = self._box(email)
        with as_control_errors():
            event, created = self.state.create_event(box, self.state.calendar(box, calendar_id), body)
        if created:
            self.notifier.changed(box.id, event, "created")
        return render.event_json(ev.master_instance(event), box)

    def user_patch_event(
        self, email: str, calendar_id: str | None, event_id: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """Edit an event (or one occurrence) as the user."""
        box = self._box(email)
        with as_control_errors():
            self.state.get_instance(box, event_id, calendar_id)
            inst = self.state.patch_event(box, event_id, patch)
        self.notifier.changed(box.id, inst.event, "updated")
        return render.event_json(inst, box)

    def user_delete_event(self, email: str, calendar_id: str | None, event_id: str) -> None:
        """Delete an event, a series or one occurrence as the user."""
        box = self._box(email)
        with as_control_errors():
            target = self.state.get_instance(box, event_id, calendar_id)
            old = self.state.delete_event(box, event_id)
        current = self.state.find_event(box, old.id)
        self.notifier.changed(box.id, current or old, "updated" if target.original_start else "deleted")

    def bulk_load(self, email: str, calendar_id: str | None, events: list[dict[str, Any]]) -> int:
        """Create many events quickly; one notification at the end, not one per event."""
        box = self._box(email)
        with as_control_errors():
            created = self.state.bulk_create(box, self.state.calendar(box, calendar_id), events)
        if created:
            self.notifier.changed(box.id, created[-1], "created")
        return len(created)

    def list_events(self, email: str, calendar_id: str | None) -> list[dict[str, Any]]:
        """Singles and series masters of a calendar, rendered as Graph does (UTC)."""
        box = self._box(email)
        with as_control_errors():
            calendar = self.state.calendar(box, calendar_id)
        return [render.event_json(ev.master_instance(e), box) for e in self.state.list_events(calendar)]

    # -- control extras --------------------------------------------------------------

    async def _lifecycle(self, request: web.Request) -> web.Response:
        data = await request.json()
        sub = self.subscriptions.by_id[str(data["subscription_id"])]
        self.notifier.lifecycle(sub, str(data["lifecycleEvent"]))
        return web.json_response({"sent": True}, status=202)

    async def _expire_refresh(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.grants.expire_refresh(self._box(str(data["email"])).id)
        return web.json_response({"expired": True})

    async def _list_subscriptions(self, request: web.Request) -> web.Response:
        email = request.query.get("email")
        user_id = self._box(email).id if email else None
        subs = [s for s in self.subscriptions.by_id.values() if user_id in (None, s.user_id)]
        return web.json_response({"subscriptions": [s.json() for s in subs]})
