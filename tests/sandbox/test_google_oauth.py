"""Google OAuth emulation: consent page, code exchange with PKCE, refresh, revocation, expiry."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from providers.sandbox import Sandbox

if TYPE_CHECKING:
    from tests.sandbox.conftest import GoogleUser

CLIENT, SECRET = "app-client", "app-secret"
REDIRECT = "http://127.0.0.1:9999/oauth/callback"
SCOPE = "https://www.googleapis.com/auth/calendar openid email"


def pkce() -> tuple[str, str]:
    """(verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def auth_params(challenge: str, **extra: str) -> dict[str, str]:
    """A well-formed authorization request."""
    return {
        "client_id": CLIENT,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": SCOPE,
        "state": "st-1",
        "access_type": "offline",
        "login_hint": "alice@example.test",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


@pytest.fixture
async def app_client(sandbox: Sandbox) -> Sandbox:
    """The sandbox with our test client registered."""
    await sandbox.control.register_client("google", CLIENT, SECRET, [REDIRECT])
    await sandbox.control.create_user("google", "alice@example.test")
    return sandbox


async def consent(
    sb: Sandbox, http: aiohttp.ClientSession, params: dict[str, str], decision: str = "allow"
) -> dict[str, list[str]]:
    """Load the consent page, submit its form, return the redirect's query."""
    async with http.get(sb.google_auth_url, params=params) as page:
        assert page.status == 200, await page.text()
        html = await page.text()
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))
    form.update({"email": "alice@example.test", "decision": decision})
    assert 'value="allow"' in html and 'value="deny"' in html
    async with http.post(sb.google_auth_url, data=form, allow_redirects=False) as resp:
        assert resp.status == 302
        location = resp.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


async def token_call(sb: Sandbox, http: aiohttp.ClientSession, **form: str) -> tuple[int, Any]:
    """POST the token endpoint with our client's credentials."""
    data = {"client_id": CLIENT, "client_secret": SECRET, **form}
    async with http.post(sb.google_token_url, data=data) as resp:
        return resp.status, await resp.json()


async def login(sb: Sandbox, http: aiohttp.ClientSession, **extra: str) -> dict[str, Any]:
    """The whole consent + code exchange; returns the token response."""
    verifier, challenge = pkce()
    query = await consent(sb, http, auth_params(challenge, **extra))
    status, body = await token_call(
        sb, http, grant_type="authorization_code", code=query["code"][0],
        redirect_uri=REDIRECT, code_verifier=verifier,
    )  # fmt: skip
    assert status == 200, body
    return body  # type: ignore[no-any-return]


async def test_consent_exchange_refresh_userinfo(app_client: Sandbox, http: aiohttp.ClientSession) -> None:
    verifier, challenge = pkce()
    query = await consent(app_client, http, auth_params(challenge))
    assert query["state"] == ["st-1"]
    code = query["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    status, tokens = await token_call(app_client, http, **form, code_verifier=verifier)
    assert status == 200
    assert {"access_token", "refresh_token", "expires_in", "token_type", "scope", "id_token"} <= set(tokens)
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600

    status, again = await token_call(app_client, http, **form, code_verifier=verifier)
    assert (status, again["error"]) == (400, "invalid_grant")  # codes are single-use

    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with http.get(app_client.google_userinfo_url, headers=headers) as resp:
        assert (await resp.json())["email"] == "alice@example.test"
    async with http.get(f"{app_client.google_api}/calendars/primary", headers=headers) as resp:
        assert (await resp.json())["id"] == "alice@example.test"

    status, refreshed = await token_call(
        app_client, http, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert status == 200 and "refresh_token" not in refreshed  # Google does not rotate
    assert refreshed["access_token"] != tokens["access_token"]


async def test_deny_redirects_with_access_denied(app_client: Sandbox, http: aiohttp.ClientSession) -> None:
    query = await consent(app_client, http, auth_params(pkce()[1]), decision="deny")
    assert query == {"error": ["access_denied"], "state": ["st-1"]}


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"client_id": "unknown"}, 401, "invalid_client"),
        ({"redirect_uri": "http://127.0.0.1:9999/other"}, 400, "redirect_uri_mismatch"),
    ],
)
async def test_bad_client_or_redirect_never_redirects(
    app_client: Sandbox, http: aiohttp.ClientSession, change: dict[str, str], status: int, error: str
) -> None:
    params = {**auth_params(pkce()[1]), **change}
    async with http.get(app_client.google_auth_url, params=params, allow_redirects=False) as resp:
        assert resp.status == status
        assert error in await resp.text()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": ""}, "invalid_request"),
        ({"code_challenge_method": "S512"}, "invalid_request"),
        ({"prompt": "bogus"}, "invalid_request"),
    ],
)
async def test_bad_parameters_redirect_with_error(
    app_client: Sandbox, http: aiohttp.ClientSession, change: dict[str, str], error: str
) -> None:
    params = {**auth_params(pkce()[1]), **change}
    async with http.get(app_client.google_auth_url, params=params, allow_redirects=False) as resp:
        assert resp.status == 302
        assert parse_qs(urlsplit(resp.headers["Location"]).query)["error"] == [error]


async def test_pkce_and_redirect_uri_are_checked(app_client: Sandbox, http: aiohttp.ClientSession) -> None:
    _, challenge = pkce()
    for form, error in (
        ({"code_verifier": "wrong" * 10, "redirect_uri": REDIRECT}, "invalid_grant"),
        ({"redirect_uri": REDIRECT}, "invalid_grant"),
        ({"code_verifier": "x", "redirect_uri": REDIRECT + "/x"}, "redirect_uri_mismatch"),
    ):
        code = (await consent(app_client, http, auth_params(challenge)))["code"][0]
        status, body = await token_call(app_client, http, grant_type="authorization_code", code=code, **form)
        assert (status, body["error"]) == (400, error)


async def test_refresh_token_only_offline_and_first_consent(app_client: Sandbox, http: aiohttp.ClientSession) -> None:
    assert "refresh_token" not in await login(app_client, http, access_type="online")
    assert "refresh_token" in await login(app_client, http)
    assert "refresh_token" not in await login(app_client, http)  # already consented
    assert "refresh_token" in await login(app_client, http, prompt="consent")


async def test_prompt_none_needs_an_earlier_grant(app_client: Sandbox, http: aiohttp.ClientSession) -> None:
    params = auth_params(pkce()[1], prompt="none")
    async with http.get(app_client.google_auth_url, params=params, allow_redirects=False) as resp:
        assert "error=consent_required" in resp.headers["Location"]
    await login(app_client, http)
    async with http.get(app_client.google_auth_url, params=params, allow_redirects=False) as resp:
        assert "code=" in resp.headers["Location"]


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"client_secret": "nope", "grant_type": "refresh_token", "refresh_token": "x"}, 401, "invalid_client"),
        ({"client_id": "nobody", "grant_type": "refresh_token", "refresh_token": "x"}, 401, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({}, 400, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "1//unknown"}, 400, "invalid_grant"),
        ({"grant_type": "authorization_code"}, 400, "invalid_request"),
    ],
)
async def test_token_endpoint_errors(
    app_client: Sandbox, http: aiohttp.ClientSession, form: dict[str, str], status: int, error: str
) -> None:
    got_status, body = await token_call(app_client, http, **form)
    assert (got_status, body["error"]) == (status, error)
    assert body["error_description"]


async def test_basic_auth_client_credentials(app_client: Sandbox, http: aiohttp.ClientSession) -> None:
    tokens = await login(app_client, http)
    basic = base64.b64encode(f"{CLIENT}:{SECRET}".encode()).decode()
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    headers = {"Authorization": f"Basic {basic}"}
    async with http.post(app_client.google_token_url, data=data, headers=headers) as resp:
        assert resp.status == 200


async def test_revoke_kills_access_and_refresh(app_client: Sandbox, http: aiohttp.ClientSession) -> None:
    tokens = await login(app_client, http)
    async with http.post(app_client.google_revoke_url, params={"token": tokens["refresh_token"]}) as resp:
        assert resp.status == 200
    async with http.post(app_client.google_revoke_url, data={"token": tokens["access_token"]}) as resp:
        assert (resp.status, (await resp.json())["error"]) == (400, "invalid_token")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with http.get(f"{app_client.google_api}/calendars/primary", headers=headers) as resp:
        assert resp.status == 401
    status, body = await token_call(app_client, http, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert (status, body) == (
        400,
        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
    )


async def test_expired_token_gets_401_auth_error(guser: GoogleUser) -> None:
    real_clock = guser.sb.ctx.clock
    later = real_clock() + timedelta(seconds=3601)
    guser.sb.ctx.clock = lambda: later
    try:
        status, body, headers = await guser.call("GET", "/calendars/primary/events")
    finally:
        guser.sb.ctx.clock = real_clock
    assert status == 401
    assert body["error"]["errors"][0]["reason"] == "authError"
    assert body["error"]["code"] == 401 and "WWW-Authenticate" in headers


async def test_access_token_ttl_setting(guser: GoogleUser) -> None:
    await guser.sb.control.settings(access_token_ttl=60)
    tokens = await guser.sb.control.issue_tokens("google", guser.email)
    assert tokens["expires_in"] == 60
    real_clock = guser.sb.ctx.clock
    later = real_clock() + timedelta(seconds=61)
    guser.sb.ctx.clock = lambda: later
    try:
        status, _, _ = await guser.call("GET", "/calendars/primary", token=tokens["access_token"])
    finally:
        guser.sb.ctx.clock = real_clock
    assert status == 401


async def test_control_expire_revoke_and_unknown_tokens(guser: GoogleUser) -> None:
    await guser.sb.control.expire_tokens("google")
    assert (await guser.call("GET", "/calendars/primary"))[0] == 401
    fresh = await guser.sb.control.issue_tokens("google", guser.email)
    assert (await guser.call("GET", "/calendars/primary", token=fresh["access_token"]))[0] == 200
    await guser.sb.control.revoke_grant("google", guser.email)
    assert (await guser.call("GET", "/calendars/primary", token=fresh["access_token"]))[0] == 401
    assert (await guser.call("GET", "/calendars/primary", token="ya29.unknown"))[0] == 401


async def test_read_only_scope_cannot_write(guser: GoogleUser) -> None:
    scope = "https://www.googleapis.com/auth/calendar.readonly"
    tokens = await guser.sb.control.issue_tokens("google", guser.email, scope)
    body = {"start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"}}
    status, error, _ = await guser.call("POST", "/calendars/primary/events", json=body, token=tokens["access_token"])
    assert status == 403 and error["error"]["errors"][0]["reason"] == "insufficientPermissions"
    assert (await guser.call("GET", "/calendars/primary/events", token=tokens["access_token"]))[0] == 200


async def test_codes_expire(app_client: Sandbox, http: aiohttp.ClientSession) -> None:
    verifier, challenge = pkce()
    code = (await consent(app_client, http, auth_params(challenge)))["code"][0]
    real_clock = app_client.ctx.clock
    later = real_clock() + timedelta(seconds=601)
    app_client.ctx.clock = lambda: later
    try:
        status, body = await token_call(
            app_client, http, grant_type="authorization_code", code=code,
            redirect_uri=REDIRECT, code_verifier=verifier,
        )  # fmt: skip
    finally:
        app_client.ctx.clock = real_clock
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_consent_page_prefills_login_hint(app_client: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.get(app_client.google_auth_url, params=auth_params(pkce()[1])) as page:
        html = await page.text()
    assert 'name="email" value="alice@example.test"' in html
    assert "<form" in html and "Allow" in html and "Deny" in html
