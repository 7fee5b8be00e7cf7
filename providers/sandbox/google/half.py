"""GoogleHalf: Google Calendar v3 + Google OAuth, plugged into the shared sandbox."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from providers.sandbox.context import SandboxContext
from providers.sandbox.google import events as ev
from providers.sandbox.google.calendar import CalendarApi
from providers.sandbox.google.errors import GoogleError, fault_body
from providers.sandbox.google.grants import Grants
from providers.sandbox.google.oauth import OAuthApi
from providers.sandbox.google.push import Pusher
from providers.sandbox.google.state import Calendar, CalendarState


class GoogleHalf:
    """The `ProviderHalf` for Google; control methods act as the user would."""

    name = "google"

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.state = CalendarState(ctx.settings, lambda: ctx.clock())
        self.grants = Grants(ctx.settings)
        self.pusher = Pusher(self.state, ctx.delivery)
        self.state.on_change = self.pusher.changed
        self.api = CalendarApi(self.state, self.grants, self.pusher, lambda: ctx.base_url)
        self.oauth = OAuthApi(self.grants, self.state, ctx.settings, lambda: ctx.clock())

    def add_routes(self, app: web.Application) -> None:
        """Mount the Calendar API and the OAuth endpoints."""
        self.api.add_routes(app)
        self.oauth.add_routes(app)

    def error_body(self, status: int, request: web.Request) -> dict[str, Any]:
        """Google's error body for an injected fault."""
        return fault_body(status, request)

    def reset(self) -> None:
        self.state.reset()
        self.state.on_change = self.pusher.changed
        self.grants.reset()
        self.api.lister.cache.clear()

    def register_client(self, client_id: str, client_secret: str, redirect_uris: list[str]) -> None:
        self.grants.register_client(client_id, client_secret, redirect_uris)

    def create_user(self, email: str) -> dict[str, Any]:
        user = self.state.create_user(email)
        cals = [self.calendar_json(self.state.calendars[c]) for c in user.calendars]
        return {"email": user.email, "id": user.id, "calendars": cals}

    def calendar_json(self, cal: Calendar) -> dict[str, Any]:
        return {"id": cal.id, "name": cal.summary, "primary": cal.primary}

    def add_calendar(self, email: str, name: str) -> dict[str, Any]:
        return self.calendar_json(self.state.add_calendar(email, name))

    def issue_tokens(self, email: str, scope: str | None) -> dict[str, Any]:
        self.state.user(email)
        access, grant = self.grants.issue_direct(email, scope, self.ctx.clock())
        return {
            "access_token": access.token,
            "refresh_token": grant.refresh_token,
            "expires_in": self.ctx.settings.access_token_ttl,
            "scope": grant.scope,
            "token_type": "Bearer",
        }

    def calendar(self, email: str, calendar_id: str | None) -> Calendar:
        """The user's calendar, KeyError for unknown user or calendar."""
        self.state.user(email)
        try:
            return self.state.calendar_for(email, calendar_id)
        except GoogleError as exc:
            raise KeyError(f"google calendar {calendar_id}") from exc

    def user_create_event(self, email: str, calendar_id: str | None, body: dict[str, Any]) -> dict[str, Any]:
        cal = self.calendar(email, calendar_id)
        return ev.render(self.as_control(lambda: self.state.insert(cal, body)), cal.zone)

    def user_patch_event(
        self, email: str, calendar_id: str | None, event_id: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        cal = self.calendar(email, calendar_id)
        return ev.render(self.as_control(lambda: self.state.patch(cal, event_id, patch, None)), cal.zone)

    def user_delete_event(self, email: str, calendar_id: str | None, event_id: str) -> None:
        cal = self.calendar(email, calendar_id)
        self.as_control(lambda: self.state.delete(cal, event_id, None))

    def bulk_load(self, email: str, calendar_id: str | None, events: list[dict[str, Any]]) -> int:
        cal = self.calendar(email, calendar_id)
        return self.as_control(lambda: self.state.bulk(cal, events))

    def list_events(self, email: str, calendar_id: str | None) -> list[dict[str, Any]]:
        cal = self.calendar(email, calendar_id)
        return [ev.render(r.body, cal.zone) for r in cal.events.values()]

    def revoke_grant(self, email: str) -> None:
        self.grants.revoke_user(email)

    def expire_access_tokens(self) -> None:
        self.grants.expire_all(self.ctx.clock())

    def invalidate_cursors(self, email: str | None) -> None:
        self.state.invalidate(email)

    @staticmethod
    def as_control(action: Any) -> Any:
        """Run a state action; Google errors become 404 (not found) or 400 for the control API."""
        try:
            return action()
        except GoogleError as exc:
            if exc.status == 404:
                raise KeyError(exc.message) from exc
            raise ValueError(f"{exc.status} {exc.reason}: {exc.message}") from exc
