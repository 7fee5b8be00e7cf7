"""Google OAuth wire handlers: consent page, token endpoint, revocation, userinfo.

`GET /o/oauth2/v2/auth` validates the request and shows a small consent form (email,
Allow, Deny) that a browser or a test submits back with POST; the answer is a 302 to
the redirect URI with `code` and `state`, or `error=access_denied`. Requests with an
unknown client or unregistered redirect URI get an error page, never a redirect.
See https://developers.google.com/identity/protocols/oauth2/web-server
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web

from providers.sandbox.context import SandboxSettings
from providers.sandbox.google.errors import OAuthError
from providers.sandbox.google.grants import AccessToken, AuthCode, Client, Grant, Grants
from providers.sandbox.google.state import CalendarState

AUTH_PATH = "/o/oauth2/v2/auth"
PROMPTS = {"none", "consent", "select_account"}
PARAMS = (
    "client_id", "redirect_uri", "response_type", "scope", "state", "access_type", "prompt",
    "login_hint", "code_challenge", "code_challenge_method", "include_granted_scopes",
)  # fmt: skip

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in - Google Accounts (sandbox)</title></head>
<body>
<h1>Calendar sandbox consent</h1>
<p>{client} wants to access your Google Account: <code>{scope}</code></p>
<form method="post" action="{action}">
{hidden}
<label>Email <input type="email" name="email" value="{email}" required></label>
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" formnovalidate>Deny</button>
</form>
</body></html>
"""


def error_page(status: int, error: str, detail: str) -> web.Response:
    """Google's own error screen (no redirect for client/redirect_uri problems)."""
    title = f"Error {status}: {html.escape(error)}"
    text = f"<html><body><h1>{title}</h1><p>{html.escape(detail)}</p></body></html>"
    return web.Response(status=status, text=text, content_type="text/html")


def redirect(uri: str, params: dict[str, str | None]) -> web.Response:
    """A 302 to the client's redirect URI with query parameters appended."""
    sep = "&" if "?" in uri else "?"
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return web.Response(status=302, headers={"Location": uri + sep + query})


class AuthRequest:
    """The validated parameters of one authorization request."""

    def __init__(self, grants: Grants, params: Mapping[str, str]) -> None:
        self.params = {k: params[k] for k in PARAMS if k in params}
        self.client = grants.clients.get(params.get("client_id", ""))
        self.redirect_uri = params.get("redirect_uri", "")
        self.state = params.get("state")
        self.prompts = set(params.get("prompt", "").split())

    def page_error(self) -> web.Response | None:
        """An error shown on Google's page (unknown client or redirect URI)."""
        if self.client is None:
            return error_page(401, "invalid_client", "The OAuth client was not found.")
        if self.redirect_uri not in self.client.redirect_uris:
            detail = f"redirect_uri={self.redirect_uri} is not registered for this client"
            return error_page(400, "redirect_uri_mismatch", detail)
        return None

    def redirect_error(self) -> str | None:
        """An error reported to the client through the redirect."""
        p = self.params
        if p.get("response_type") != "code":
            return "unsupported_response_type"
        if not p.get("scope"):
            return "invalid_request"
        if p.get("access_type", "online") not in ("online", "offline"):
            return "invalid_request"
        if not self.prompts <= PROMPTS or ("none" in self.prompts and len(self.prompts) > 1):
            return "invalid_request"
        if "code_challenge" in p and p.get("code_challenge_method", "plain") not in (
            "S256",
            "plain",
        ):
            return "invalid_request"
        return None

    def fail(self, error: str) -> web.Response:
        """Redirect back with an error."""
        return redirect(self.redirect_uri, {"error": error, "state": self.state})


class OAuthApi:
    """Handlers for the OAuth endpoints."""

    def __init__(
        self,
        grants: Grants,
        state: CalendarState,
        settings: SandboxSettings,
        clock: Callable[[], datetime],
    ):
        self.grants = grants
        self.state = state
        self.settings = settings
        self.clock = clock

    async def authorize(self, request: web.Request) -> web.Response:
        """GET: validate and show the consent form (or answer prompt=none directly)."""
        auth = AuthRequest(self.grants, request.query)
        problem = auth.page_error()
        if problem is not None:
            return problem
        error = auth.redirect_error()
        if error is not None:
            return auth.fail(error)
        if "none" in auth.prompts:
            return self.silent(auth)
        return self.consent_page(auth)

    def silent(self, auth: AuthRequest) -> web.Response:
        """prompt=none: a code if the hinted user already consented, else an error."""
        email = auth.params.get("login_hint")
        if not email or email not in self.state.users:
            return auth.fail("login_required")
        assert auth.client is not None
        if not any(
            g.email == email and g.client_id == auth.client.client_id and not g.revoked for g in self.grants.grants
        ):
            return auth.fail("consent_required")
        return self.grant_code(auth, email)

    def consent_page(self, auth: AuthRequest) -> web.Response:
        """The HTML form with Allow and Deny."""
        hidden = "\n".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in auth.params.items())
        text = PAGE.format(
            client=html.escape(auth.params["client_id"]),
            scope=html.escape(auth.params["scope"]),
            action=AUTH_PATH,
            hidden=hidden,
            email=html.escape(auth.params.get("login_hint", "")),
        )
        return web.Response(text=text, content_type="text/html")

    async def decide(self, request: web.Request) -> web.Response:
        """POST from the consent form: Allow → code, Deny → access_denied."""
        form = await request.post()
        auth = AuthRequest(self.grants, {k: str(v) for k, v in form.items()})
        problem = auth.page_error()
        if problem is not None:
            return problem
        error = auth.redirect_error()
        if error is not None:
            return auth.fail(error)
        if form.get("decision") != "allow":
            return auth.fail("access_denied")
        email = str(form.get("email") or "").strip()
        if not email:
            return self.consent_page(auth)
        self.state.create_user(email)  # any account may sign in; new ones get a calendar
        return self.grant_code(auth, email)

    def grant_code(self, auth: AuthRequest, email: str) -> web.Response:
        """Redirect with a fresh authorization code."""
        assert auth.client is not None
        p = auth.params
        code = AuthCode(
            client_id=auth.client.client_id,
            redirect_uri=auth.redirect_uri,
            email=email,
            scope=p["scope"],
            offline=p.get("access_type") == "offline",
            force_consent="consent" in auth.prompts,
            challenge=p.get("code_challenge"),
            method=p.get("code_challenge_method", "plain"),
            expires_at=self.clock() + timedelta(seconds=self.settings.auth_code_ttl),
        )
        value = self.grants.new_code(code)
        return redirect(auth.redirect_uri, {"code": value, "scope": p["scope"], "state": auth.state})

    async def token(self, request: web.Request) -> web.Response:
        """POST /token: authorization_code and refresh_token grants."""
        try:
            return web.json_response(await self.exchange(request))
        except OAuthError as exc:
            return exc.response()

    async def exchange(self, request: web.Request) -> dict[str, Any]:
        """The token response for a form-encoded token request."""
        form = {k: str(v) for k, v in (await request.post()).items()}
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "Missing required parameter: grant_type")
        client = self.grants.authenticate(*client_credentials(request, form))
        now = self.clock()
        if grant_type == "authorization_code":
            if not form.get("code"):
                raise OAuthError("invalid_request", "Missing required parameter: code")
            access, grant = self.grants.exchange(
                client, form["code"], form.get("redirect_uri"), form.get("code_verifier"), now
            )
            return self.token_response(access, grant, client, with_refresh=True)
        if grant_type == "refresh_token":
            if not form.get("refresh_token"):
                raise OAuthError("invalid_request", "Missing required parameter: refresh_token")
            access = self.grants.use_refresh(client, form["refresh_token"], now)
            return self.token_response(access, access.grant, client, with_refresh=False)
        raise OAuthError("unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def token_response(
        self, access: AccessToken, grant: Grant, client: Client, *, with_refresh: bool
    ) -> dict[str, Any]:
        """Google's token response fields."""
        body: dict[str, Any] = {
            "access_token": access.token,
            "expires_in": self.settings.access_token_ttl,
            "scope": grant.scope,
            "token_type": "Bearer",
        }
        if with_refresh and grant.refresh_token:
            body["refresh_token"] = grant.refresh_token
        if "openid" in grant.scope.split():
            body["id_token"] = self.id_token(grant, client)
        return body

    def id_token(self, grant: Grant, client: Client) -> str:
        """An OIDC id_token, HS256-signed with sha256(client secret) (the sandbox has no keys)."""
        now = self.clock()
        user = self.state.users.get(grant.email)
        claims = {
            "iss": "https://accounts.google.com",
            "aud": client.client_id,
            "sub": user.id if user else grant.email,
            "email": grant.email,
            "email_verified": True,
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + self.settings.access_token_ttl,
        }
        key = hashlib.sha256(client.secret.encode()).digest()
        return jwt.encode(claims, key, algorithm="HS256")

    async def revoke(self, request: web.Request) -> web.Response:
        """POST /revoke?token=…: revoke the grant behind an access or refresh token."""
        form = await request.post() if request.can_read_body else {}
        token = request.query.get("token") or str(form.get("token") or "")
        try:
            self.grants.revoke_token(token)
        except OAuthError as exc:
            return exc.response()
        return web.json_response({})

    async def userinfo(self, request: web.Request) -> web.Response:
        """GET /oauth2/v3/userinfo for the bearer token's user."""
        _, _, value = request.headers.get("Authorization", "").partition(" ")
        access = self.grants.bearer(value.strip(), self.clock())
        if access is None:
            body = {"error": "invalid_request", "error_description": "Invalid Credentials"}
            return web.json_response(body, status=401)
        user = self.state.users.get(access.email)
        sub = user.id if user else access.email
        return web.json_response(
            {
                "sub": sub,
                "email": access.email,
                "email_verified": True,
                "name": access.email.split("@")[0],
            }
        )

    def add_routes(self, app: web.Application) -> None:
        """Mount the OAuth paths."""
        app.router.add_routes(
            [
                web.get(AUTH_PATH, self.authorize),
                web.post(AUTH_PATH, self.decide),
                web.post("/token", self.token),
                web.post("/revoke", self.revoke),
                web.get("/oauth2/v3/userinfo", self.userinfo),
            ]
        )


def client_credentials(request: web.Request, form: dict[str, str]) -> tuple[str | None, str | None]:
    """client_id/secret from HTTP Basic auth or the form body."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            raw = base64.b64decode(header[6:]).decode()
        except (ValueError, UnicodeDecodeError):
            return None, None
        client_id, _, secret = raw.partition(":")
        return client_id, secret
    return form.get("client_id"), form.get("client_secret")
