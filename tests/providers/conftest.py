"""Fixtures for the provider clients against the real sandbox over HTTP.

The session-wide `sandbox` comes from tests/conftest.py. `account(provider)` builds a
sandbox user with tokens and a ready client; every test here starts from a reset sandbox
(no users, faults or request log).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from providers.base import Window
from providers.google.client import GoogleCalendarClient
from providers.http import (
    ProviderHttp,
    RetryPolicy,
    raise_for_google_status,
    raise_for_graph_status,
)
from providers.oauth import OAuthProvider, google_provider, microsoft_provider
from providers.outlook.client import GraphCalendarClient
from providers.sandbox import Sandbox
from providers.tokens import AccessTokens

# Fast but real backoff: tests exercise the policy without waiting seconds.
FAST_RETRY = RetryPolicy(attempts=6, base=0.01, cap=0.05, deadline=10.0)
GOOGLE_SCOPES = (
    "openid",
    "email",
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
)
MS_SCOPES = ("offline_access", "User.Read", "Calendars.ReadWrite")
WINDOW = Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2027, 11, 1, tzinfo=UTC))
_emails = itertools.count(1)


@dataclass
class Account:
    """A sandbox user plus everything a test needs to drive its client."""

    provider: str  # sandbox name: "google" | "microsoft"
    email: str
    calendar_id: str
    http: ProviderHttp
    oauth: OAuthProvider
    tokens: AccessTokens
    client: GoogleCalendarClient | GraphCalendarClient
    refreshes: list[tuple[str, datetime, str | None]] = field(default_factory=list)
    issued: dict[str, Any] = field(default_factory=dict)  # the sandbox's token answer

    def event(self, start: datetime, minutes: int = 60, title: str = "busy") -> dict[str, Any]:
        """A provider-native event body for the sandbox's user-side routes."""
        end = start + timedelta(minutes=minutes)
        if self.provider == "google":
            return {
                "summary": title,
                "start": {"dateTime": start.isoformat()},
                "end": {"dateTime": end.isoformat()},
            }
        return {
            "subject": title,
            "start": {
                "dateTime": start.astimezone(UTC).replace(tzinfo=None).isoformat(),
                "timeZone": "UTC",
            },
            "end": {
                "dateTime": end.astimezone(UTC).replace(tzinfo=None).isoformat(),
                "timeZone": "UTC",
            },
        }


@pytest.fixture(scope="module")
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(autouse=True)
async def _clean_sandbox(sandbox: Sandbox) -> None:
    await sandbox.control.reset()


def provider_http(sandbox: Sandbox, session: aiohttp.ClientSession, provider: str, **kw: Any) -> ProviderHttp:
    """A ProviderHttp configured for the sandbox's Google or Graph API."""
    if provider == "google":
        return ProviderHttp(
            session,
            api_base=sandbox.google_api,
            raise_for_status=raise_for_google_status,
            policy=kw.pop("policy", FAST_RETRY),
            provider="google",
            **kw,
        )
    return ProviderHttp(
        session,
        api_base=sandbox.graph_api,
        raise_for_status=raise_for_graph_status,
        policy=kw.pop("policy", FAST_RETRY),
        provider="microsoft",
        **kw,
    )


def oauth_provider(sandbox: Sandbox, provider: str) -> OAuthProvider:
    """The sandbox's default OAuth client for `provider`."""
    if provider == "google":
        return google_provider(
            client_id="sandbox-google-client",
            client_secret=SecretStr("sandbox-google-secret"),
            auth_url=sandbox.google_auth_url,
            token_url=sandbox.google_token_url,
            revoke_url=sandbox.google_revoke_url,
            userinfo_url=sandbox.google_userinfo_url,
            scopes=GOOGLE_SCOPES,
        )
    return microsoft_provider(
        client_id="sandbox-ms-client",
        client_secret=SecretStr("sandbox-ms-secret"),
        authority=sandbox.ms_authority,
        graph_api=sandbox.graph_api,
        scopes=MS_SCOPES,
    )


MakeAccount = Callable[..., Awaitable[Account]]


@pytest.fixture
def account(sandbox: Sandbox, http_session: aiohttp.ClientSession) -> MakeAccount:
    """Factory: `await account("google")` → a fresh user with tokens and a client."""

    async def make(
        provider: str,
        *,
        policy: RetryPolicy = FAST_RETRY,
        page_size: int | None = None,
        **http_kw: Any,
    ) -> Account:
        email = f"user{next(_emails)}@calsync.test"
        user = await sandbox.control.create_user(provider, email)
        issued = await sandbox.control.issue_tokens(provider, email)
        http = provider_http(sandbox, http_session, provider, policy=policy, **http_kw)
        oauth = oauth_provider(sandbox, provider)
        refreshes: list[tuple[str, datetime, str | None]] = []

        async def on_refresh(access: str, expires_at: datetime, rotated: str | None) -> None:
            refreshes.append((access, expires_at, rotated))

        tokens = AccessTokens(
            http,
            oauth,
            refresh_token=issued["refresh_token"],
            access_token=issued["access_token"],
            expires_at=datetime.now(UTC) + timedelta(seconds=issued["expires_in"]),
            on_refresh=on_refresh,
        )
        cls = GoogleCalendarClient if provider == "google" else GraphCalendarClient
        paging = {"page_size": page_size} if page_size else {}
        client = cls(http, tokens, budget_key=f"{provider}:{email}", **paging)
        calendar_id = next(c["id"] for c in user["calendars"] if c["primary"])
        return Account(provider, email, calendar_id, http, oauth, tokens, client, refreshes, issued)

    return make


@pytest.fixture(params=["google", "microsoft"])
def provider(request: pytest.FixtureRequest) -> str:
    """Run a test once per provider: both clients must behave alike."""
    return str(request.param)
