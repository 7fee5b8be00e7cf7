"""OAuth 2.0 authorization-code flow (PKCE S256) for Google and Microsoft; specifics as data.

Builds authorization URLs and talks to token, revocation and user-info endpoints. It keeps
no state and never logs tokens; persisting what it returns is the caller's job.
Google: https://developers.google.com/identity/protocols/oauth2/web-server
Microsoft: https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from pydantic import SecretStr

from providers import errors
from providers.http import ProviderHttp, retry_after_seconds

GOOGLE_SCOPE = "https://www.googleapis.com/auth/"
GRAPH_SCOPE = "https://graph.microsoft.com/"

# Token-endpoint `error` values that only the user can fix by connecting again.
_REAUTH_ERRORS = frozenset({"invalid_grant", "interaction_required", "consent_required", "login_required"})
_CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client"})


@dataclass(frozen=True, slots=True)
class OAuthProvider:
    """Everything that differs between Google's and Microsoft's OAuth servers."""

    name: str
    auth_url: str
    token_url: str
    revoke_url: str | None
    userinfo_url: str
    client_id: str
    client_secret: SecretStr
    scopes: tuple[str, ...]
    # Each group needs at least one granted scope (compared case-insensitively, prefix-free).
    required_scopes: tuple[frozenset[str], ...] = ()
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    # Microsoft wants `scope` on token requests; Google takes it from the grant.
    scope_on_token_requests: bool = False


@dataclass(frozen=True, slots=True)
class TokenSet:
    """The token endpoint's answer; `refresh_token` is None when the provider kept the old one."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime
    scope: tuple[str, ...]


def google_provider(
    *,
    client_id: str,
    client_secret: SecretStr,
    auth_url: str,
    token_url: str,
    revoke_url: str,
    userinfo_url: str,
    scopes: tuple[str, ...],
) -> OAuthProvider:
    """Google's OAuth server; asks for offline access and a fresh consent every time."""
    return OAuthProvider(
        name="google",
        auth_url=auth_url,
        token_url=token_url,
        revoke_url=revoke_url,
        userinfo_url=userinfo_url,
        client_id=client_id,
        client_secret=client_secret,
        scopes=scopes,
        required_scopes=(
            frozenset({"calendar", "calendar.events"}),
            frozenset(
                {
                    "calendar",
                    "calendar.readonly",
                    "calendar.calendarlist",
                    "calendar.calendarlist.readonly",
                }
            ),
        ),
        # prompt=consent: Google only returns a refresh token on a consent screen.
        authorize_params={
            "access_type": "offline",
            "prompt": "consent",
            "include_granted_scopes": "true",
        },
    )


def microsoft_provider(
    *,
    client_id: str,
    client_secret: SecretStr,
    authority: str,
    graph_api: str,
    scopes: tuple[str, ...],
    tenant: str = "common",
) -> OAuthProvider:
    """The Microsoft identity platform (v2.0 endpoints) with Graph's /me as user info."""
    base = f"{authority.rstrip('/')}/{tenant}/oauth2/v2.0"
    return OAuthProvider(
        name="microsoft",
        auth_url=f"{base}/authorize",
        token_url=f"{base}/token",
        revoke_url=None,  # Microsoft has no token revocation endpoint for this flow
        userinfo_url=f"{graph_api.rstrip('/')}/me",
        client_id=client_id,
        client_secret=client_secret,
        scopes=scopes,
        required_scopes=(frozenset({"calendars.readwrite"}),),
        authorize_params={"response_mode": "query"},
        scope_on_token_requests=True,
    )


def pkce_pair() -> tuple[str, str]:
    """A fresh (code_verifier, S256 code_challenge) pair."""
    verifier = secrets.token_urlsafe(64)  # 86 characters, inside RFC 7636's 43-128
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(
    provider: OAuthProvider,
    *,
    redirect_uri: str,
    state: str,
    code_challenge: str,
    login_hint: str | None = None,
) -> str:
    """The URL to send the user to for consent."""
    params = {
        "client_id": provider.client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": " ".join(provider.scopes),
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        **provider.authorize_params,
    }
    if login_hint:
        params["login_hint"] = login_hint
    return f"{provider.auth_url}?{urlencode(params, quote_via=quote)}"


async def exchange_code(
    http: ProviderHttp,
    provider: OAuthProvider,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
    now: datetime | None = None,
) -> TokenSet:
    """Redeem an authorization code; MissingScopeError if calendar access was not granted."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    tokens = await _token_request(http, provider, form, now)
    check_scopes(provider, tokens.scope)
    if not tokens.refresh_token:
        raise errors.MissingScopeError("no refresh token granted: offline access is missing")
    return tokens


async def refresh(
    http: ProviderHttp, provider: OAuthProvider, *, refresh_token: str, now: datetime | None = None
) -> TokenSet:
    """A new access token (and, from Microsoft, a rotated refresh token); `now` dates its expiry."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await _token_request(http, provider, form, now)


async def revoke(http: ProviderHttp, provider: OAuthProvider, *, token: str) -> None:
    """Revoke a grant where the provider allows it; a token already invalid counts as revoked."""
    if provider.revoke_url is None:
        return
    try:
        await http.request(
            "POST",
            provider.revoke_url,
            form={"token": token},
            raise_for_status=raise_for_oauth_status,
        )
    except (errors.BadRequestError, errors.ReauthRequiredError):
        return


async def account_email(http: ProviderHttp, provider: OAuthProvider, *, access_token: str) -> str:
    """The connected account's email (Google userinfo `email`; Graph /me `mail` or UPN)."""
    response = await http.request("GET", provider.userinfo_url, headers={"Authorization": f"Bearer {access_token}"})
    body = response.body if isinstance(response.body, dict) else {}
    for key in ("email", "mail", "userPrincipalName"):
        if isinstance(body.get(key), str) and body[key]:
            return str(body[key])
    raise errors.MalformedResponseError("user info carries no email address")


def check_scopes(provider: OAuthProvider, granted: tuple[str, ...]) -> None:
    """Raise MissingScopeError unless every required scope group has a granted member."""
    names = {_scope_name(s) for s in granted}
    for group in provider.required_scopes:
        if not names & group:
            raise errors.MissingScopeError(f"calendar access not granted (need one of {sorted(group)})")


def _scope_name(scope: str) -> str:
    for prefix in (GOOGLE_SCOPE, GRAPH_SCOPE):
        if scope.startswith(prefix):
            scope = scope[len(prefix) :]
    return scope.lower()


async def _token_request(
    http: ProviderHttp, provider: OAuthProvider, form: dict[str, str], now: datetime | None
) -> TokenSet:
    form = {
        **form,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret.get_secret_value(),
    }
    if provider.scope_on_token_requests:
        form["scope"] = " ".join(provider.scopes)
    response = await http.request("POST", provider.token_url, form=form, raise_for_status=raise_for_oauth_status)
    return _token_set(response.body, requested=provider.scopes, now=now or datetime.now(UTC))


def _token_set(body: Any, *, requested: tuple[str, ...], now: datetime) -> TokenSet:
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise errors.MalformedResponseError("token response without access_token")
    try:
        lifetime = float(body.get("expires_in", 3600))
    except (TypeError, ValueError):
        lifetime = 3600.0
    scope = body.get("scope")
    return TokenSet(
        access_token=body["access_token"],
        refresh_token=body.get("refresh_token") or None,
        expires_at=now + timedelta(seconds=lifetime),
        # RFC 6749 §5.1: an omitted scope means exactly the requested one.
        scope=tuple(scope.split()) if isinstance(scope, str) else requested,
    )


def raise_for_oauth_status(status: int, body: Any, headers: Mapping[str, str]) -> None:
    """Token, revoke and authorize errors (`{"error": "invalid_grant", ...}`) → the error tree."""
    if status < 400:
        return
    code = body.get("error") if isinstance(body, dict) else None
    code = code if isinstance(code, str) else ""
    kw: dict[str, Any] = {"status": status, "reason": code or None}
    message = f"token endpoint refused: {code or status}"
    if code in _REAUTH_ERRORS:
        raise errors.ReauthRequiredError(message, **kw)
    if status == 429:
        raise errors.RateLimitedError(message, retry_after=retry_after_seconds(headers), **kw)
    if status >= 500 or code == "temporarily_unavailable":
        raise errors.UnavailableError(message, retry_after=retry_after_seconds(headers), **kw)
    if code in _CLIENT_ERRORS:
        raise errors.ForbiddenError(message, **kw)
    raise errors.BadRequestError(message, **kw)
