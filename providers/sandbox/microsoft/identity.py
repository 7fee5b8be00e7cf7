"""Microsoft identity platform v2.0 endpoints: /{tenant}/oauth2/v2.0/authorize and /token.

https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow . The
authorize endpoint shows a small consent page (a form with Allow and Deny that a test
can submit); the token endpoint redeems codes and rotates refresh tokens.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

from aiohttp import web

from providers.sandbox.microsoft.errors import AadError, aad_error_body, aad_error_response
from providers.sandbox.microsoft.grants import Client, Grants
from providers.sandbox.microsoft.state import GraphState

AUTHORIZE = "/{tenant}/oauth2/v2.0/authorize"
TOKEN = "/{tenant}/oauth2/v2.0/token"
# Parameters the consent form carries through unchanged.
CARRIED = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "login_hint",
    "response_mode",
    "nonce",
    "domain_hint",
)
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Permissions requested</title></head>
<body>
<h1>Permissions requested</h1>
<p>{client} would like to: {scopes}</p>
<form method="post" action="{action}">
{hidden}
<label>Email <input type="email" name="email" value="{login}" required></label>
<button type="submit" name="decision" value="allow">Accept</button>
<button type="submit" name="decision" value="deny" formnovalidate>Cancel</button>
</form>
</body></html>
"""


def _error_page(err: AadError) -> web.Response:
    """What the browser sees when the request cannot even be redirected."""
    body = aad_error_body(err)
    message = html.escape(body["error_description"])
    text = f"<!doctype html><title>Sign in error</title><p>{message}</p>"
    return web.Response(text=text, status=400, content_type="text/html")


def _redirect(redirect_uri: str, params: Mapping[str, str | None], mode: str) -> web.Response:
    """Send the browser back to the app with a response in the requested mode."""
    clean = {k: v for k, v in params.items() if v is not None}
    if mode == "form_post":
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in clean.items()
        )
        action = html.escape(redirect_uri)
        page = (
            '<html><body onload="document.forms[0].submit()">'
            f'<form method="post" action="{action}">{fields}</form></body></html>'
        )
        return web.Response(text=page, content_type="text/html")
    joiner = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    return web.Response(status=302, headers={"Location": f"{redirect_uri}{joiner}{urlencode(clean)}"})


class Identity:
    """The identity platform routes of the Microsoft half."""

    def __init__(self, grants: Grants, state: GraphState, ensure_user: Callable[[str], str]) -> None:
        self.grants = grants
        self.state = state
        self.ensure_user = ensure_user  # email -> user id, creating the mailbox if new

    def routes(self) -> list[web.RouteDef]:
        """Authorize (GET page, POST decision) and token."""
        return [
            web.get(AUTHORIZE, self.authorize),
            web.post(AUTHORIZE, self.decide),
            web.post(TOKEN, self.token),
        ]

    def _checked_client(self, params: Mapping[str, str]) -> tuple[Client, str] | web.Response:
        """Client and redirect URI, or the error page shown when either is wrong."""
        try:
            client = self.grants.client(params.get("client_id"))
            return client, self.grants.check_redirect(client, params.get("redirect_uri"))
        except AadError as err:
            return _error_page(err)

    def _request_error(self, params: Mapping[str, str]) -> tuple[str, str] | None:
        """(error, description) for a malformed authorize request, else None."""
        if params.get("response_type") != "code":
            return (
                "unsupported_response_type",
                "AADSTS700054: response_type 'code' is required for this sandbox.",
            )
        if not params.get("scope"):
            return (
                "invalid_request",
                "AADSTS900144: The request body must contain the following parameter: 'scope'.",
            )
        if params.get("code_challenge") and params.get("code_challenge_method", "plain") not in (
            "S256",
            "plain",
        ):
            return "invalid_request", "AADSTS501491: Invalid code_challenge_method."
        if params.get("prompt") == "none":
            return (
                "interaction_required",
                "AADSTS50058: A silent sign-in request was sent but no user is signed in.",
            )
        return None

    async def authorize(self, request: web.Request) -> web.Response:
        """GET authorize: validate, then show the consent page."""
        params = request.query
        checked = self._checked_client(params)
        if isinstance(checked, web.Response):
            return checked
        client, redirect_uri = checked
        problem = self._request_error(params)
        mode = params.get("response_mode", "query")
        if problem is not None:
            return _redirect(
                redirect_uri,
                {
                    "error": problem[0],
                    "error_description": problem[1],
                    "state": params.get("state"),
                },
                mode,
            )
        hidden = "\n".join(
            f'<input type="hidden" name="{k}" value="{html.escape(params[k])}">' for k in CARRIED if k in params
        )
        page = PAGE.format(
            client=html.escape(client.client_id),
            scopes=html.escape(params["scope"]),
            action=html.escape(request.path),
            hidden=hidden,
            login=html.escape(params.get("login_hint", "")),
        )
        return web.Response(text=page, content_type="text/html")

    async def decide(self, request: web.Request) -> web.Response:
        """POST authorize (the consent form): redirect with a code, or with access_denied."""
        form = await request.post()
        params = {k: str(v) for k, v in form.items()}
        checked = self._checked_client(params)
        if isinstance(checked, web.Response):
            return checked
        client, redirect_uri = checked
        mode = params.get("response_mode", "query")
        state = params.get("state")
        problem = self._request_error({**params, "prompt": ""})
        if problem is not None:
            return _redirect(
                redirect_uri,
                {"error": problem[0], "error_description": problem[1], "state": state},
                mode,
            )
        # The same form fields as the Google half's consent page, so one test helper fits both.
        login = (params.get("email") or params.get("login_hint") or "").strip()
        if params.get("decision") != "allow" or not login:
            description = "AADSTS65004: User declined to consent to access the app."
            return _redirect(
                redirect_uri,
                {"error": "access_denied", "error_description": description, "state": state},
                mode,
            )
        grant = self.grants.new_grant(self.ensure_user(login), client.client_id, params["scope"])
        code = self.grants.issue_code(
            grant,
            redirect_uri,
            params.get("code_challenge"),
            params.get("code_challenge_method", "plain"),
        )
        return _redirect(redirect_uri, {"code": code, "state": state, "session_state": grant.id}, mode)

    async def token(self, request: web.Request) -> web.Response:
        """POST token: authorization_code and refresh_token grants."""
        form = await request.post()
        params = {k: str(v) for k, v in form.items()}
        try:
            client = self._client_auth(request, params)
            grant_type = params.get("grant_type")
            if not grant_type:
                raise AadError(900144)
            if grant_type == "authorization_code":
                grant = self.grants.redeem_code(
                    client,
                    params.get("code"),
                    params.get("redirect_uri"),
                    params.get("code_verifier"),
                )
            elif grant_type == "refresh_token":
                grant = self.grants.use_refresh(client, params.get("refresh_token"))
            else:
                raise AadError(70003)
        except AadError as err:
            return aad_error_response(err)
        return web.json_response(
            self.grants.tokens(grant),
            headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
        )

    def _client_auth(self, request: web.Request, params: dict[str, str]) -> Client:
        """Client credentials from the form or HTTP Basic."""
        client_id, secret = params.get("client_id"), params.get("client_secret")
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:]).decode()
            except ValueError as exc:
                raise AadError(7000215, status=401) from exc
            basic_id, _, basic_secret = decoded.partition(":")
            client_id, secret = client_id or basic_id, basic_secret
        if not secret:
            self.grants.client(client_id)
            raise AadError(7000218, status=401)
        return self.grants.authenticate(client_id, secret)
