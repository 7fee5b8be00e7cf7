"""The callback's failure paths: consent denied, state expired, replayed, tampered; code refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from tests.api.connect_support import (
    ConnectApi,
    connection,
    consent,
    open_callback,
    query_of,
    serving,
    start,
    undeclared,
    unique_email,
)
from tests.factories import make_resource
from worker.clock import ManualClock
from worker.crypto import new_key

PROVIDERS = ["google", "outlook"]


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest.fixture(scope="module")
async def capi(
    settings: Any, engine: Any, redis: Any, http: aiohttp.ClientSession, sandbox: Any, clock: ManualClock
) -> AsyncIterator[ConnectApi]:
    async with serving(settings, engine, redis, http, sandbox, clock=clock) as api:
        yield api


async def _pending(capi: ConnectApi, provider: str) -> tuple[Any, dict[str, Any]]:
    resource = await make_resource(capi.deps.sessions)
    return resource, await start(capi, resource.id, resource.company_id, provider)


def _with_state(location: str, state: str) -> str:
    base, _, _ = location.partition("?")
    params = {**query_of(location), "state": state}
    return f"{base}?{urlencode(params)}"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_consent_denied_says_so_and_spends_the_state(capi: ConnectApi, provider: str) -> None:
    resource, created = await _pending(capi, provider)
    location = await consent(capi.http, created["authUrl"], unique_email("deny"), allow=False)
    assert query_of(location)["error"] == "access_denied"
    result = await open_callback(capi.http, location)
    assert result.code == "consent_denied" and "not granted" in result.html
    shown = await connection(capi, resource.id, resource.company_id, created["id"])
    assert shown["pending"] is True and shown["lastError"] == "access_denied"
    # The denied state cannot be used again, even by a real consent of the same URL.
    again = await open_callback(capi.http, await consent(capi.http, created["authUrl"], unique_email("deny2")))
    assert (again.status, again.code) == (400, "state_invalid")


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_expired_state_is_refused(capi: ConnectApi, clock: ManualClock, provider: str) -> None:
    resource, created = await _pending(capi, provider)
    location = await consent(capi.http, created["authUrl"], unique_email("exp"))
    clock.advance(seconds=capi.deps.settings.oauth.state_ttl_seconds + 1)
    try:
        result = await open_callback(capi.http, location)
    finally:
        clock.advance(seconds=-(capi.deps.settings.oauth.state_ttl_seconds + 1))
    assert (result.status, result.code) == (400, "state_expired")
    assert "expired" in result.html
    shown = await connection(capi, resource.id, resource.company_id, created["id"])
    assert shown["pending"] is True


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_replayed_callback_is_refused(capi: ConnectApi, provider: str) -> None:
    _, created = await _pending(capi, provider)
    location = await consent(capi.http, created["authUrl"], unique_email("replay"))
    assert (await open_callback(capi.http, location)).code == "connected"
    replay = await open_callback(capi.http, location)
    assert (replay.status, replay.code) == (400, "state_invalid")


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_tampered_state_is_refused(capi: ConnectApi, provider: str) -> None:
    resource, created = await _pending(capi, provider)
    location = await consent(capi.http, created["authUrl"], unique_email("tamper"))
    state = query_of(location)["state"]
    conn_id, _, nonce = state.partition(".")
    flipped = nonce[:-1] + ("A" if nonce[-1] != "A" else "B")
    other_id = f"{int(conn_id) + 1}.{nonce}"
    for forged in (f"{conn_id}.{flipped}", other_id, nonce, "", "x" * 600):
        result = await open_callback(capi.http, _with_state(location, forged))
        assert result.status == 400 and result.code in ("state_invalid", "invalid_request"), forged
    # The genuine state still works afterwards: forgeries did not spend it.
    assert (await open_callback(capi.http, location)).code == "connected"
    shown = await connection(capi, resource.id, resource.company_id, created["id"])
    assert shown["status"] == "active"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_regenerated_url_replaces_the_old_one(capi: ConnectApi, provider: str) -> None:
    resource, created = await _pending(capi, provider)
    path = f"/v3/resource/{resource.id}/externalCalendar/{created['id']}/regenerateAuthUrl"
    _, fresh = await capi.call("PUT", path, resource.company_id, expect=200)
    assert fresh["id"] == created["id"] and fresh["authUrl"] != created["authUrl"]
    old = await open_callback(capi.http, await consent(capi.http, created["authUrl"], unique_email("old")))
    assert (old.status, old.code) == (400, "state_invalid")
    new = await open_callback(capi.http, await consent(capi.http, fresh["authUrl"], unique_email("new")))
    assert new.code == "connected"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_invalid_grant_at_the_token_endpoint_is_a_clear_page(capi: ConnectApi, provider: str) -> None:
    resource, created = await _pending(capi, provider)
    location = await consent(capi.http, created["authUrl"], unique_email("ig"))
    body = {"error": "invalid_grant", "error_description": "Bad Request"}
    path = "^/token$" if provider == "google" else "/oauth2/v2.0/token$"
    await capi.sandbox.control.add_fault(
        provider="google" if provider == "google" else "microsoft", path=path, status=400, body=body, count=1
    )
    try:
        result = await open_callback(capi.http, location)
    finally:
        await capi.sandbox.control.clear_faults()
    assert (result.status, result.code) == (400, "code_refused")
    assert "invalid_grant" not in result.html and "Traceback" not in result.html
    shown = await connection(capi, resource.id, resource.company_id, created["id"])
    assert shown["pending"] is True and shown["lastError"] == "code_refused"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_code_replayed_under_a_new_state_is_refused_by_the_provider(capi: ConnectApi, provider: str) -> None:
    _, created = await _pending(capi, provider)
    location = await consent(capi.http, created["authUrl"], unique_email("code"))
    assert (await open_callback(capi.http, location)).code == "connected"
    # A second pending connection whose fresh state carries the already-redeemed code.
    _, other = await _pending(capi, provider)
    other_state = query_of(other["authUrl"])["state"]
    result = await open_callback(capi.http, _with_state(location, other_state))
    assert (result.status, result.code) == (400, "code_refused")


async def test_reauth_required_connection_recovers_through_regenerate(capi: ConnectApi) -> None:
    resource, created = await _pending(capi, "google")
    email = unique_email("reauth")
    assert (await open_callback(capi.http, await consent(capi.http, created["authUrl"], email))).code == "connected"
    await capi.sandbox.control.revoke_grant("google", email)
    path = f"/v3/resource/{resource.id}/externalCalendars/list"
    await capi.sandbox.control.expire_tokens("google")
    status, body = await capi.call("GET", path, resource.company_id)
    assert status == 409 and body["error"]["code"] == "reauth_required"
    shown = await connection(capi, resource.id, resource.company_id, created["id"])
    assert shown["status"] == "reauth_required"
    regen = f"/v3/resource/{resource.id}/externalCalendar/{created['id']}/regenerateAuthUrl"
    _, fresh = await capi.call("PUT", regen, resource.company_id, expect=200)
    assert query_of(fresh["authUrl"]).get("login_hint") == email
    assert (await open_callback(capi.http, await consent(capi.http, fresh["authUrl"], email))).code == "connected"
    shown = await connection(capi, resource.id, resource.company_id, created["id"])
    assert shown["status"] == "active" and len(shown["calendars"]) == 1


async def test_callback_without_code_or_state(capi: ConnectApi) -> None:
    for query in ("", "?code=abc", "?state=1.abc"):
        result = await open_callback(capi.http, f"{capi.url}/oauth/callback{query}")
        assert (result.status, result.code) == (400, "invalid_request")


async def test_concurrent_callbacks_with_one_state_connect_once(capi: ConnectApi) -> None:
    _, created = await _pending(capi, "google")
    location = await consent(capi.http, created["authUrl"], unique_email("race"))
    results = await asyncio.gather(*(open_callback(capi.http, location) for _ in range(4)))
    assert sorted(r.code for r in results) == ["connected", "state_invalid", "state_invalid", "state_invalid"]


async def test_reconnecting_another_account_replaces_the_links(capi: ConnectApi) -> None:
    resource, created = await _pending(capi, "google")
    first = unique_email("acct-a")
    assert (await open_callback(capi.http, await consent(capi.http, created["authUrl"], first))).code == "connected"
    regen = f"/v3/resource/{resource.id}/externalCalendar/{created['id']}/regenerateAuthUrl"
    _, fresh = await capi.call("PUT", regen, resource.company_id, expect=200)
    second = unique_email("acct-b")
    assert (await open_callback(capi.http, await consent(capi.http, fresh["authUrl"], second))).code == "connected"
    shown = await connection(capi, resource.id, resource.company_id, created["id"])
    assert shown["calendarEmail"] == second
    assert [c["calendarId"] for c in shown["calendars"]] == [shown["calendarId"]]
    assert shown["calendarId"] != first


async def test_tokens_written_under_an_old_key_work_after_a_new_key_is_put_first(
    capi: ConnectApi, settings: Any, engine: Any, redis: Any, http: aiohttp.ClientSession, sandbox: Any
) -> None:
    resource, created = await _pending(capi, "google")
    assert (await open_callback(capi.http, await consent(capi.http, created["authUrl"], unique_email("rot")))).code == (
        "connected"
    )
    old_key = capi.deps.settings.crypto.keys[0].get_secret_value()
    rotated = {"crypto": {"keys": [new_key(), old_key]}}
    async with serving(settings, engine, redis, http, sandbox, overrides=rotated) as after:
        status, body = await after.call(
            "GET", f"/v3/resource/{resource.id}/externalCalendars/list", resource.company_id
        )
    assert status == 200 and any(c["primary"] for c in body["calendars"])


async def test_a_provider_error_is_stored_only_as_a_clean_word(capi: ConnectApi) -> None:
    resource, created = await _pending(capi, "outlook")
    state = query_of(created["authUrl"])["state"]
    query = urlencode({"error": "access_denied\x00<script>", "state": state})
    result = await open_callback(capi.http, f"{capi.url}/oauth/callback?{query}")
    assert result.code == "provider_error" and "<script>" not in result.html
    shown = await connection(capi, resource.id, resource.company_id, created["id"])
    assert shown["lastError"] == "access_deniedscript"


async def test_every_status_seen_here_is_declared(capi: ConnectApi) -> None:
    assert capi.seen
    assert undeclared(capi.seen) == []
    assert capi.nonconforming == []
