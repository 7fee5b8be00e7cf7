"""GoogleHalf: the Google Calendar v3 + Google OAuth half of the sandbox (work in progress)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from providers.sandbox.context import SandboxContext
from providers.sandbox.google.errors import fault_body


class GoogleHalf:
    """Plugs Google's state and wire handlers into the shared sandbox."""

    name = "google"

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.users: dict[str, dict[str, Any]] = {}

    def add_routes(self, app: web.Application) -> None:
        """Mount Google's paths."""

    def error_body(self, status: int, request: web.Request) -> dict[str, Any]:
        """Google's error body for an injected fault."""
        return fault_body(status, request)

    def reset(self) -> None:
        self.users.clear()

    def register_client(self, client_id: str, client_secret: str, redirect_uris: list[str]) -> None:
        pass

    def create_user(self, email: str) -> dict[str, Any]:
        user = {
            "email": email,
            "id": email,
            "calendars": [{"id": email, "name": email, "primary": True}],
        }
        self.users[email] = user
        return user

    def add_calendar(self, email: str, name: str) -> dict[str, Any]:
        raise NotImplementedError

    def issue_tokens(self, email: str, scope: str | None) -> dict[str, Any]:
        raise NotImplementedError

    def user_create_event(
        self, email: str, calendar_id: str | None, body: dict[str, Any]
    ) -> dict[str, Any]:
        raise NotImplementedError

    def user_patch_event(
        self, email: str, calendar_id: str | None, event_id: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        raise NotImplementedError

    def user_delete_event(self, email: str, calendar_id: str | None, event_id: str) -> None:
        raise NotImplementedError

    def bulk_load(self, email: str, calendar_id: str | None, events: list[dict[str, Any]]) -> int:
        raise NotImplementedError

    def list_events(self, email: str, calendar_id: str | None) -> list[dict[str, Any]]:
        return []

    def revoke_grant(self, email: str) -> None:
        pass

    def expire_access_tokens(self) -> None:
        pass

    def invalidate_cursors(self, email: str | None) -> None:
        pass
