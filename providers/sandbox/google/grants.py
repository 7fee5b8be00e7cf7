"""Google OAuth semantics without HTTP: clients, authorization codes, grants and tokens.

A grant is one consent of one user to one client for a scope; it owns at most one
refresh token (only with `access_type=offline`, and only on first consent or with
`prompt=consent`, as Google does) and any number of access tokens. Revoking any of its
tokens revokes the grant. Refresh tokens are never rotated.
See https://developers.google.com/identity/protocols/oauth2/web-server
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from providers.sandbox.context import SandboxSettings
from providers.sandbox.google.errors import OAuthError

DEFAULT_CLIENT = ("sandbox-google-client", "sandbox-google-secret")
DEFAULT_SCOPE = "https://www.googleapis.com/auth/calendar"


@dataclass
class Client:
    """A registered OAuth client."""

    client_id: str
    secret: str
    redirect_uris: set[str] = field(default_factory=set)


@dataclass
class AuthCode:
    """A single-use authorization code."""

    client_id: str
    redirect_uri: str
    email: str
    scope: str
    offline: bool
    force_consent: bool
    challenge: str | None
    method: str
    expires_at: datetime


@dataclass
class Grant:
    """One user's consent to one client."""

    id: int
    client_id: str
    email: str
    scope: str
    refresh_token: str | None = None
    revoked: bool = False


@dataclass
class AccessToken:
    """A bearer token; valid while unexpired and its grant stands."""

    token: str
    grant: Grant
    expires_at: datetime

    @property
    def email(self) -> str:
        return self.grant.email

    @property
    def scope(self) -> str:
        return self.grant.scope


def pkce_ok(verifier: str, challenge: str, method: str) -> bool:
    """Check a PKCE verifier against its challenge (S256 or plain)."""
    if method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge
    return secrets.compare_digest(verifier, challenge)


class Grants:
    """All OAuth state of the Google half."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.clients: dict[str, Client] = {}
        self.register_client(*DEFAULT_CLIENT, [])
        self.reset()

    def reset(self) -> None:
        """Forget codes, grants and tokens; registered clients stay."""
        self.codes: dict[str, AuthCode] = {}
        self.grants: list[Grant] = []
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, Grant] = {}

    def register_client(self, client_id: str, secret: str, redirect_uris: list[str]) -> None:
        """Add a client, or update its secret and add redirect URIs to an existing one."""
        client = self.clients.setdefault(client_id, Client(client_id, secret))
        client.secret = secret
        client.redirect_uris.update(redirect_uris)

    def authenticate(self, client_id: str | None, secret: str | None) -> Client:
        """The client for these credentials, or invalid_client (401)."""
        client = self.clients.get(client_id or "")
        if client is None:
            raise OAuthError("invalid_client", "The OAuth client was not found.", 401)
        if secret is None or not secrets.compare_digest(client.secret, secret):
            raise OAuthError("invalid_client", "Unauthorized", 401)
        return client

    def has_refresh(self, client_id: str, email: str) -> bool:
        """Whether the user already gave this client a live refresh token."""
        return any(
            g.client_id == client_id and g.email == email and g.refresh_token and not g.revoked for g in self.grants
        )

    def new_code(self, code: AuthCode) -> str:
        """Store an authorization code and return it."""
        value = "4/0" + secrets.token_urlsafe(40)
        self.codes[value] = code
        return value

    def exchange(
        self,
        client: Client,
        code: str,
        redirect_uri: str | None,
        verifier: str | None,
        now: datetime,
    ) -> tuple[AccessToken, Grant]:
        """Redeem a code (single use) for an access token and its grant."""
        stored = self.codes.pop(code, None)
        if stored is None or stored.expires_at <= now:
            raise OAuthError("invalid_grant", "Malformed auth code.")
        if stored.client_id != client.client_id:
            raise OAuthError("invalid_grant", "Unauthorized")
        if redirect_uri != stored.redirect_uri:
            raise OAuthError("redirect_uri_mismatch", "Bad Request")
        if stored.challenge is not None:
            if not verifier:
                raise OAuthError("invalid_grant", "Missing code verifier.")
            if not pkce_ok(verifier, stored.challenge, stored.method):
                raise OAuthError("invalid_grant", "Invalid code verifier.")
        grant = Grant(len(self.grants) + 1, client.client_id, stored.email, stored.scope)
        if stored.offline and (stored.force_consent or not self.has_refresh(grant.client_id, grant.email)):
            grant.refresh_token = self.mint_refresh(grant)
        self.grants.append(grant)
        return self.mint_access(grant, now), grant

    def mint_refresh(self, grant: Grant) -> str:
        """A new refresh token bound to the grant."""
        token = "1//0" + secrets.token_urlsafe(48)
        self.refresh[token] = grant
        return token

    def mint_access(self, grant: Grant, now: datetime) -> AccessToken:
        """A new access token for the grant, valid for settings.access_token_ttl."""
        expires = now + timedelta(seconds=self.settings.access_token_ttl)
        token = AccessToken("ya29.a0" + secrets.token_urlsafe(64), grant, expires)
        self.access[token.token] = token
        return token

    def use_refresh(self, client: Client, refresh_token: str, now: datetime) -> AccessToken:
        """A fresh access token for a refresh token (no rotation)."""
        grant = self.refresh.get(refresh_token)
        if grant is None or grant.revoked:
            raise OAuthError("invalid_grant", "Token has been expired or revoked.")
        if grant.client_id != client.client_id:
            raise OAuthError("unauthorized_client", "Unauthorized")
        return self.mint_access(grant, now)

    def issue_direct(self, email: str, scope: str | None, now: datetime) -> tuple[AccessToken, Grant]:
        """Tokens for the default client without the consent dance (control route)."""
        grant = Grant(len(self.grants) + 1, DEFAULT_CLIENT[0], email, scope or DEFAULT_SCOPE)
        grant.refresh_token = self.mint_refresh(grant)
        self.grants.append(grant)
        return self.mint_access(grant, now), grant

    def bearer(self, token: str, now: datetime) -> AccessToken | None:
        """The live access token for a bearer value, or None (→ 401)."""
        found = self.access.get(token)
        if found is None or found.grant.revoked or found.expires_at <= now:
            return None
        return found

    def revoke_token(self, token: str) -> None:
        """Revoke the grant behind an access or refresh token (invalid_token if unknown)."""
        access = self.access.get(token)
        grant = access.grant if access is not None else self.refresh.get(token)
        if grant is None or grant.revoked:
            raise OAuthError("invalid_token", "Token expired or revoked")
        grant.revoked = True

    def revoke_user(self, email: str) -> None:
        """Revoke every grant of a user."""
        for grant in self.grants:
            if grant.email == email:
                grant.revoked = True

    def expire_all(self, now: datetime) -> None:
        """Make every access token expired (refresh tokens keep working)."""
        for token in self.access.values():
            token.expires_at = min(token.expires_at, now - timedelta(seconds=1))
