"""The identity platform emulator: consent page, code redemption, refresh rotation, AADSTS "
"errors."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from tests.sandbox.test_microsoft_support import Graph

CLIENT_ID, SECRET = "sandbox-ms-client", "sandbox-ms-secret"
REDIRECT = "http://127.0.0.1:9/oauth/callback"  # never contacted: redirects are not followed
SCOPE = "offline_access User.Read Calendars.ReadWrite"
VERIFIER = "v" * 50
CHALLENGE = (
    base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).decode().rstrip("=")
)


@pytest.fixture
async def http(sandbox: Any) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session (no redirect following) with the test client registered."""
    await sandbox.control.register_client("microsoft", CLIENT_ID, SECRET, [REDIRECT])
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def email(sandbox: Any) -> str:
    """A fresh mailbox's address."""
    address = f"id-{uuid.uuid4().hex[:8]}@contoso.test"
    await sandbox.control.create_user("microsoft", address)
    return address


async def consent(
    sandbox: Any,
    http: aiohttp.ClientSession,
    email: str,
    decision: str = "allow",
    tenant: str = "common",
    **extra: str,
) -> dict[str, list[str]]:
    """Open the authorize page, submit its form, return the redirect's query parameters."""
    params = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": SCOPE,
        "state": "st-1",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "login_hint": email,
        "response_mode": "query",
        **extra,
    }
    url = f"{sandbox.ms_authority}/{tenant}/oauth2/v2.0/authorize"
    async with http.get(url, params=params, allow_redirects=False) as page:
        assert page.status == 200 and page.content_type == "text/html"
        html = await page.text()
    action = re.search(r'<form method="post" action="([^"]+)"', html)
    assert action is not None
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    form = {**fields, "email": email, "decision": decision}
    async with http.post(sandbox.url + action.group(1), data=form, allow_redirects=False) as back:
        assert back.status == 302
        location = back.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


async def token(
    sandbox: Any, http: aiohttp.ClientSession, tenant: str = "common", **form: str
) -> tuple[int, Any]:
    """POST the token endpoint with client credentials in the form."""
    body = {"client_id": CLIENT_ID, "client_secret": SECRET, **form}
    async with http.post(f"{sandbox.ms_authority}/{tenant}/oauth2/v2.0/token", data=body) as resp:
        return resp.status, await resp.json()


async def redeem(
    sandbox: Any, http: aiohttp.ClientSession, code: str, **extra: str
) -> tuple[int, Any]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
    }
    return await token(sandbox, http, **{**form, **extra})


def assert_aadsts(body: Any, error: str, code: int) -> None:
    """Microsoft's token error shape, with the AADSTS number in three places."""
    assert body["error"] == error and body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}:")
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)


@pytest.mark.parametrize(
    "tenant", ["common", "organizations", "consumers", "72f988bf-86f1-41af-91ab-2d7cd011db47"]
)
async def test_consent_code_and_token_then_graph(
    sandbox: Any, http: aiohttp.ClientSession, email: str, tenant: str
) -> None:
    query = await consent(sandbox, http, email, tenant=tenant)
    assert query["state"] == ["st-1"]
    status, body = await redeem(sandbox, http, query["code"][0])
    assert status == 200 and body["token_type"] == "Bearer" and body["refresh_token"]
    assert body["expires_in"] == body["ext_expires_in"] == 3600
    assert set(body["scope"].split()) == {"User.Read", "Calendars.ReadWrite"}
    graph = Graph(sandbox.graph_api, body["access_token"], email)
    try:
        me = await graph.call("GET", "/me")
    finally:
        await graph.close()
    assert me.body["mail"] == email


async def test_codes_are_single_use(sandbox: Any, http: aiohttp.ClientSession, email: str) -> None:
    code = (await consent(sandbox, http, email))["code"][0]
    assert (await redeem(sandbox, http, code))[0] == 200
    status, body = await redeem(sandbox, http, code)
    assert status == 400
    assert_aadsts(body, "invalid_grant", 54005)


async def test_pkce_and_redirect_uri_are_checked(
    sandbox: Any, http: aiohttp.ClientSession, email: str
) -> None:
    code = (await consent(sandbox, http, email))["code"][0]
    status, body = await redeem(sandbox, http, code, code_verifier="w" * 50)
    assert status == 400 and body["error_codes"] == [501481]
    code = (await consent(sandbox, http, email))["code"][0]
    status, body = await redeem(sandbox, http, code, redirect_uri="http://127.0.0.1:9/other")
    assert status == 400 and body["error_codes"] == [50011]


async def test_unregistered_redirect_shows_an_error_page(
    sandbox: Any, http: aiohttp.ClientSession
) -> None:
    params = {
        "client_id": CLIENT_ID,
        "redirect_uri": "http://evil.test/cb",
        "response_type": "code",
        "scope": SCOPE,
    }
    url = f"{sandbox.ms_authority}/common/oauth2/v2.0/authorize"
    async with http.get(url, params=params, allow_redirects=False) as page:
        assert page.status == 400 and "AADSTS50011" in await page.text()


async def test_deny_and_prompt_none_redirect_with_errors(
    sandbox: Any, http: aiohttp.ClientSession, email: str
) -> None:
    denied = await consent(sandbox, http, email, decision="deny")
    assert denied["error"] == ["access_denied"] and denied["state"] == ["st-1"]
    assert denied["error_description"][0].startswith("AADSTS65004")
    params = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": SCOPE,
        "prompt": "none",
    }
    url = f"{sandbox.ms_authority}/common/oauth2/v2.0/authorize"
    async with http.get(url, params=params, allow_redirects=False) as resp:
        assert resp.status == 302 and "error=interaction_required" in resp.headers["Location"]


async def test_no_refresh_token_without_offline_access(
    sandbox: Any, http: aiohttp.ClientSession, email: str
) -> None:
    query = await consent(sandbox, http, email, scope="User.Read Calendars.ReadWrite")
    status, body = await redeem(sandbox, http, query["code"][0])
    assert status == 200 and "refresh_token" not in body


async def test_refresh_rotates_and_old_token_has_a_grace_period(
    sandbox: Any, http: aiohttp.ClientSession, email: str
) -> None:
    first = (await redeem(sandbox, http, (await consent(sandbox, http, email))["code"][0]))[1]
    status, second = await token(
        sandbox, http, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert status == 200 and second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert (
        await token(sandbox, http, grant_type="refresh_token", refresh_token=first["refresh_token"])
    )[0] == 200
    await sandbox.control.settings(refresh_grace_seconds=0)
    status, body = await token(
        sandbox, http, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert status == 400
    assert_aadsts(body, "invalid_grant", 70008)
    assert (
        await token(
            sandbox, http, grant_type="refresh_token", refresh_token=second["refresh_token"]
        )
    )[0] == 200


async def test_revoked_and_inactive_grants(
    sandbox: Any, http: aiohttp.ClientSession, email: str
) -> None:
    tokens = await sandbox.control.issue_tokens("microsoft", email)
    await sandbox.control.request("POST", "microsoft/grants/expire", json={"email": email})
    status, body = await token(
        sandbox, http, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert status == 400
    assert_aadsts(body, "invalid_grant", 700082)
    fresh = await sandbox.control.issue_tokens("microsoft", email)
    await sandbox.control.revoke_grant("microsoft", email)
    status, body = await token(
        sandbox, http, grant_type="refresh_token", refresh_token=fresh["refresh_token"]
    )
    assert_aadsts(body, "invalid_grant", 50173)
    graph = Graph(sandbox.graph_api, fresh["access_token"], email)
    try:
        reply = await graph.call("GET", "/me/calendars")
    finally:
        await graph.close()
    assert reply.status == 401 and reply.body["error"]["code"] == "InvalidAuthenticationToken"


async def test_client_authentication(sandbox: Any, http: aiohttp.ClientSession, email: str) -> None:
    tokens = await sandbox.control.issue_tokens("microsoft", email)
    status, body = await token(
        sandbox,
        http,
        client_secret="wrong",
        grant_type="refresh_token",
        refresh_token=tokens["refresh_token"],
    )
    assert status == 401
    assert_aadsts(body, "invalid_client", 7000215)
    basic = aiohttp.BasicAuth(CLIENT_ID, SECRET)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    async with http.post(
        f"{sandbox.ms_authority}/common/oauth2/v2.0/token", data=form, auth=basic
    ) as resp:
        assert resp.status == 200
    status, body = await token(sandbox, http, grant_type="password")
    assert status == 400 and body["error"] == "unsupported_grant_type"


async def test_expired_access_token_is_401_until_refreshed(
    sandbox: Any, http: aiohttp.ClientSession, email: str
) -> None:
    tokens = await sandbox.control.issue_tokens("microsoft", email)
    await sandbox.control.expire_tokens("microsoft")
    graph = Graph(sandbox.graph_api, tokens["access_token"], email)
    try:
        reply = await graph.call("GET", "/me")
        assert reply.status == 401 and "expired" in reply.body["error"]["message"]
        assert "WWW-Authenticate" in reply.headers
        status, body = await token(
            sandbox, http, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
        )
        assert status == 200
        graph.token = body["access_token"]
        assert (await graph.call("GET", "/me")).status == 200
    finally:
        await graph.close()


async def test_read_only_scope_cannot_write(sandbox: Any, email: str) -> None:
    tokens = await sandbox.control.issue_tokens("microsoft", email, "offline_access Calendars.Read")
    graph = Graph(sandbox.graph_api, tokens["access_token"], email)
    try:
        assert (await graph.call("GET", "/me/calendars")).status == 200
        when = {"dateTime": "2026-12-01T09:00:00", "timeZone": "UTC"}
        reply = await graph.call("POST", "/me/events", json={"start": when, "end": when})
    finally:
        await graph.close()
    assert reply.status == 403 and reply.body["error"]["code"] == "ErrorAccessDenied"
