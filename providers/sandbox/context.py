"""The contract between the shared sandbox machinery and each provider half.

The shared modules (server, control, faults, delivery, requests log) know nothing of
Google or Microsoft semantics; each half plugs in through `ProviderHalf`. Nothing here
imports calsync's own clients, worker or jobs: a misunderstanding in a client must
never be mirrored by its fake.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aiohttp import web

    from providers.sandbox.delivery import Delivery
    from providers.sandbox.faults import Faults
    from providers.sandbox.requests_log import RequestLog


def utc_now() -> datetime:
    """The sandbox's default clock."""
    return datetime.now(UTC)


@dataclass
class SandboxSettings:
    """Tunables a test or benchmark may change at run time (POST /_sandbox/settings)."""

    access_token_ttl: int = 3600  # seconds; Google and Microsoft both default to about an hour
    auth_code_ttl: int = 600  # seconds; both providers keep codes about ten minutes
    channel_max_ttl: int = 604800  # seconds; Google's default and cap for watch channels
    subscription_max_minutes: int = 4230  # Graph's enforced cap for Outlook events
    validation_timeout: float = 10.0  # seconds Graph waits for the validation echo
    notification_timeout: float = 3.0  # seconds Graph waits for a 2xx on delivery
    delivery_retry_base: float = 0.2  # seconds; real providers retry over hours, scaled down
    delivery_max_attempts: int = 5
    refresh_grace_seconds: int = 86400  # Microsoft: an old refresh token works this long after rotation
    allow_http_push: bool = True  # real Google demands https; loopback tests cannot have it


@dataclass
class SandboxContext:
    """Shared services handed to each provider half."""

    base_url: str
    faults: Faults
    delivery: Delivery
    requests: RequestLog
    settings: SandboxSettings = field(default_factory=SandboxSettings)
    clock: Callable[[], datetime] = utc_now


class ProviderHalf(Protocol):
    """What a provider half (google/, microsoft/) offers the shared server and control surface.

    Control methods act *as the user would* (changes notify push subscribers) and take and
    return the provider's own JSON shapes.

    The server constructs each half as `Half(ctx: SandboxContext)`. Control methods raise
    `KeyError` for an unknown user/calendar/event (the control route answers 404) and
    `ValueError` for a bad body (400). Optional hooks, looked up with getattr:
    - `error_body(status: int, request: web.Request) -> dict`: the provider's own error
      body for an injected fault of that status;
    - `add_control_routes(app: web.Application) -> None`: provider-specific control routes
      under `/_sandbox/{name}/...`;
    - `async close() -> None`: called when the sandbox stops.
    """

    name: str  # "google" | "microsoft"

    def add_routes(self, app: web.Application) -> None:
        """Mount the provider's real API paths (and its OAuth endpoints)."""

    def reset(self) -> None: ...

    def register_client(self, client_id: str, client_secret: str, redirect_uris: list[str]) -> None: ...

    def create_user(self, email: str) -> dict[str, Any]: ...

    def add_calendar(self, email: str, name: str) -> dict[str, Any]: ...

    def issue_tokens(self, email: str, scope: str | None) -> dict[str, Any]: ...

    def user_create_event(self, email: str, calendar_id: str | None, body: dict[str, Any]) -> dict[str, Any]: ...

    def user_patch_event(
        self, email: str, calendar_id: str | None, event_id: str, patch: dict[str, Any]
    ) -> dict[str, Any]: ...

    def user_delete_event(self, email: str, calendar_id: str | None, event_id: str) -> None: ...

    def bulk_load(self, email: str, calendar_id: str | None, events: list[dict[str, Any]]) -> int: ...

    def list_events(self, email: str, calendar_id: str | None) -> list[dict[str, Any]]: ...

    def revoke_grant(self, email: str) -> None: ...

    def expire_access_tokens(self) -> None: ...

    def invalidate_cursors(self, email: str | None) -> None: ...
