"""Identity-platform semantics: app registrations, consent grants, codes and tokens (no HTTP).

https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow . Refresh
tokens rotate on every use; the replaced one keeps working for a grace period.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from providers.sandbox.context import SandboxSettings
from providers.sandbox.microsoft.errors import AadError

DEFAULT_CLIENT_ID = "sandbox-ms-client"
DEFAULT_CLIENT_SECRET = "sandbox-ms-secret"
DEFAULT_SCOPE = "offline_access User.Read Calendars.ReadWrite"
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
GRAPH_PREFIX = "https://graph.microsoft.com/"


@dataclass
class Client:
    """An app registration."""

    client_id: str
    secret: str
    redirect_uris: set[str] = field(default_factory=set)


@dataclass
class Grant:
    """One user's consent to one app; revoking it kills its tokens."""

    id: str
    user_id: str
    client_id: str
    scopes: list[str]
    revoked: bool = False
    inactive: bool = False  # refresh tokens expired through inactivity (AADSTS700082)


@dataclass
class Code:
    """An authorization code awaiting redemption."""

    grant: Grant
    redirect_uri: str
    challenge: str | None
    method: str
    expires: datetime
    redeemed: bool = False


@dataclass
class AccessToken:
    """A bearer token for Graph."""

    grant: Grant
    expires: datetime


@dataclass
class RefreshToken:
    """A refresh token; `replaced_at` is set when a refresh rotated it."""

    grant: Grant
    issued: datetime
    replaced_at: datetime | None = None


def normalise_scopes(scope: str) -> list[str]:
    """Scopes as the token response reports them (Graph's short names, in order)."""
    out: list[str] = []
    for raw in scope.split():
        name = raw.removeprefix(GRAPH_PREFIX)
        if name == ".default":
            name = "Calendars.ReadWrite"
        if name not in out:
            out.append(name)
    return out


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class Grants:
    """Clients, grants, codes and tokens of the Microsoft identity platform."""

    def __init__(self, settings: SandboxSettings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.clock = clock
        self.clients: dict[str, Client] = {}
        self.register(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, [])
        self.reset()

    def reset(self) -> None:
        """Forget grants and tokens; registered clients stay."""
        self.grants: list[Grant] = []
        self.codes: dict[str, Code] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}

    def register(self, client_id: str, secret: str, redirect_uris: list[str]) -> Client:
        """Register or update an app; redirect URIs accumulate."""
        client = self.clients.setdefault(client_id, Client(client_id, secret))
        client.secret = secret
        client.redirect_uris.update(redirect_uris)
        return client

    def client(self, client_id: str | None) -> Client:
        """A registered client, or AADSTS700016."""
        found = self.clients.get(client_id or "")
        if found is None:
            raise AadError(
                700016,
                status=400,
                detail=f"Application with identifier '{client_id}' was not found.",
            )
        return found

    def authenticate(self, client_id: str | None, secret: str | None) -> Client:
        """Check a confidential client's secret (401 invalid_client on mismatch)."""
        client = self.client(client_id)
        if not secret or not secrets.compare_digest(secret, client.secret):
            raise AadError(7000215, status=401)
        return client

    def check_redirect(self, client: Client, redirect_uri: str | None) -> str:
        """The redirect URI if registered for the client, else AADSTS50011."""
        if not redirect_uri or redirect_uri not in client.redirect_uris:
            raise AadError(50011)
        return redirect_uri

    def new_grant(self, user_id: str, client_id: str, scope: str) -> Grant:
        """Record a consent."""
        grant = Grant(secrets.token_hex(8), user_id, client_id, normalise_scopes(scope))
        self.grants.append(grant)
        return grant

    def issue_code(self, grant: Grant, redirect_uri: str, challenge: str | None, method: str) -> str:
        """A single-use authorization code."""
        code = "M.C" + secrets.token_urlsafe(40)
        expires = self.clock() + timedelta(seconds=self.settings.auth_code_ttl)
        self.codes[code] = Code(grant, redirect_uri, challenge, method or "plain", expires)
        return code

    def redeem_code(self, client: Client, code: str | None, redirect_uri: str | None, verifier: str | None) -> Grant:
        """Exchange a code for its grant, enforcing single use, expiry, redirect and PKCE."""
        found = self.codes.get(code or "")
        if found is None or found.grant.client_id != client.client_id:
            raise AadError(9002313 if not code else 70000)
        if found.redeemed:
            raise AadError(54005)
        if found.expires <= self.clock() or found.grant.revoked:
            raise AadError(70008)
        if redirect_uri != found.redirect_uri:
            raise AadError(50011)
        if found.challenge is not None:
            expected = s256(verifier or "") if found.method == "S256" else verifier
            if not verifier or expected != found.challenge:
                raise AadError(501481)
        found.redeemed = True
        return found.grant

    def tokens(self, grant: Grant) -> dict[str, object]:
        """The token response for a grant (refresh token only with offline_access)."""
        access = secrets.token_urlsafe(48)
        ttl = self.settings.access_token_ttl
        self.access[access] = AccessToken(grant, self.clock() + timedelta(seconds=ttl))
        body: dict[str, object] = {
            "token_type": "Bearer",
            "scope": " ".join(s for s in grant.scopes if s not in OIDC_SCOPES),
            "expires_in": ttl,
            "ext_expires_in": ttl,
            "access_token": access,
        }
        if "offline_access" in grant.scopes:
            refresh = "M.R3_" + secrets.token_urlsafe(60)
            self.refresh[refresh] = RefreshToken(grant, self.clock())
            body["refresh_token"] = refresh
        return body

    def use_refresh(self, client: Client, token: str | None) -> Grant:
        """Validate a refresh token and rotate it (the old one stays usable for the grace "
        "period)."""
        found = self.refresh.get(token or "")
        if found is None:
            raise AadError(9002313)
        if found.grant.client_id != client.client_id:
            raise AadError(70000, detail="The refresh token was issued to a different client.")
        if found.grant.revoked:
            raise AadError(50173)
        if found.grant.inactive:
            raise AadError(700082)
        now = self.clock()
        if found.replaced_at is not None:
            if now - found.replaced_at > timedelta(seconds=self.settings.refresh_grace_seconds):
                raise AadError(70008)
        else:
            found.replaced_at = now
        return found.grant

    def bearer(self, token: str) -> AccessToken | None:
        """The live access token for a bearer string, or None (unknown, expired, revoked)."""
        found = self.access.get(token)
        if found is None or found.grant.revoked or found.expires <= self.clock():
            return None
        return found

    def revoke_user(self, user_id: str) -> None:
        """Withdraw every grant of a user (AADSTS50173 on refresh, 401 on Graph)."""
        for grant in self.grants:
            if grant.user_id == user_id:
                grant.revoked = True

    def expire_refresh(self, user_id: str) -> None:
        """Make a user's refresh tokens fail as inactive (AADSTS700082)."""
        for grant in self.grants:
            if grant.user_id == user_id:
                grant.inactive = True

    def expire_access(self) -> None:
        """Expire every access token now."""
        now = self.clock()
        for token in self.access.values():
            token.expires = min(token.expires, now)
