"""Provider clients for a connection: OAuth settings from config, tokens from the database.

The one place that turns a stored connection into a ready `CalendarClient`. Refreshed
access tokens (and Microsoft's rotated refresh tokens) are written back encrypted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from providers.base import RequestBudget
from providers.google.client import GoogleCalendarClient
from providers.http import ProviderHttp, RetryPolicy, raise_for_google_status, raise_for_graph_status
from providers.oauth import OAuthProvider, google_provider, microsoft_provider
from providers.outlook.client import GraphCalendarClient
from providers.tokens import AccessTokens
from worker import metrics
from worker.db.connections import store_tokens
from worker.db.tables import ExternalCalendar
from worker.deps import Deps


class MetricsObserver:
    """Feeds provider requests, retries and token refreshes into Prometheus."""

    def response(self, provider: str, status: str) -> None:
        metrics.PROVIDER_REQUESTS.labels(provider, status).inc()

    def retry(self, provider: str, reason: str) -> None:
        metrics.PROVIDER_RETRIES.labels(provider, reason).inc()

    def token_refresh(self, provider: str, outcome: str) -> None:
        metrics.TOKEN_REFRESHES.labels(provider, outcome).inc()


OBSERVER = MetricsObserver()


@dataclass(frozen=True)
class ProviderKit:
    """What talking to one provider needs: its OAuth server and its request machinery."""

    name: str  # "google" | "outlook" (our name; the sandbox calls Outlook "microsoft")
    oauth: OAuthProvider
    http: ProviderHttp


def retry_policy(deps: Deps) -> RetryPolicy:
    h = deps.settings.http
    return RetryPolicy(
        attempts=h.retry_attempts, base=h.retry_base_seconds, cap=h.retry_cap_seconds, deadline=h.retry_deadline_seconds
    )


def provider_kit(deps: Deps, provider: str, *, budget: RequestBudget | None = None) -> ProviderKit:
    """The OAuth provider and HTTP machinery for "google" or "outlook", from settings."""
    s = deps.settings
    if provider == "google":
        g = s.google
        oauth = google_provider(
            client_id=g.client_id,
            client_secret=g.client_secret,
            auth_url=g.auth_url,
            token_url=g.token_url,
            revoke_url=g.revoke_url,
            userinfo_url=g.userinfo_url,
            scopes=g.scopes,
        )
        api_base, mapper, wire_name = g.api_base, raise_for_google_status, "google"
    elif provider == "outlook":
        o = s.outlook
        oauth = microsoft_provider(
            client_id=o.client_id,
            client_secret=o.client_secret,
            authority=o.authority,
            graph_api=o.api_base,
            scopes=o.scopes,
            tenant=o.tenant,
        )
        api_base, mapper, wire_name = o.api_base, raise_for_graph_status, "microsoft"
    else:
        raise ValueError(f"unknown provider {provider!r}")
    http = ProviderHttp(
        deps.http,
        api_base=api_base,
        raise_for_status=mapper,
        policy=retry_policy(deps),
        timeout_seconds=s.http.timeout_seconds,
        budget=budget,
        provider=wire_name,
        observer=OBSERVER,
    )
    return ProviderKit(name=provider, oauth=oauth, http=http)


def tokens_for(deps: Deps, kit: ProviderKit, connection: ExternalCalendar) -> AccessTokens:
    """An AccessTokens holder for a stored connection that persists what it refreshes."""
    if connection.refresh_token_enc is None:
        raise ValueError(f"connection {connection.id} has no refresh token (not authorised yet)")
    cipher = deps.cipher

    async def persist(access_token: str, expires_at: datetime, rotated: str | None) -> None:
        async with deps.sessions.begin() as session:
            await store_tokens(
                session=session,
                connection_id=connection.id,
                access_token_enc=cipher.encrypt(access_token),
                expires_at=expires_at,
                refresh_token_enc=cipher.encrypt(rotated) if rotated else None,
            )

    return AccessTokens(
        kit.http,
        kit.oauth,
        refresh_token=cipher.decrypt(connection.refresh_token_enc),
        access_token=cipher.decrypt(connection.access_token_enc) if connection.access_token_enc else None,
        expires_at=connection.access_token_expires_at,
        on_refresh=persist,
        clock=deps.clock.now,
    )


def client_for(
    deps: Deps, connection: ExternalCalendar, *, budget: RequestBudget | None = None
) -> GoogleCalendarClient | GraphCalendarClient:
    """A ready calendar client for an active connection."""
    kit = provider_kit(deps, connection.provider, budget=budget)
    tokens = tokens_for(deps, kit, connection)
    key = f"{connection.provider}:{connection.account_email or connection.id}"
    if connection.provider == "google":
        return GoogleCalendarClient(kit.http, tokens, api_base=kit.http.api_base, budget_key=key)
    return GraphCalendarClient(kit.http, tokens, api_base=kit.http.api_base, budget_key=key)
