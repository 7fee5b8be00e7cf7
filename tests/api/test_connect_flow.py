"""The connect flow over real HTTP against both sandboxes: create, consent, callback, GET, delete."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select, text

from tests.api.connect_support import (
    ConnectApi,
    connect,
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
from worker.cache import version_key
from worker.db.tables import CalendarLink, ExternalCalendar, Unavailability

PROVIDERS = ["google", "outlook"]


@pytest.fixture(scope="module")
async def capi(
    settings: Any, engine: Any, redis: Any, http: aiohttp.ClientSession, sandbox: Any
) -> AsyncIterator[ConnectApi]:
    async with serving(settings, engine, redis, http, sandbox) as api:
        yield api


async def _links(api: ConnectApi, connection_id: int) -> list[CalendarLink]:
    async with api.deps.sessions() as session:
        stmt = select(CalendarLink).where(CalendarLink.connection_id == connection_id).order_by(CalendarLink.id)
        return list((await session.execute(stmt)).scalars())


async def _row(api: ConnectApi, connection_id: int) -> ExternalCalendar | None:
    async with api.deps.sessions() as session:
        return await session.get(ExternalCalendar, connection_id)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_create_returns_pending_connection_with_pkce_auth_url(capi: ConnectApi, provider: str) -> None:
    resource = await make_resource(capi.deps.sessions)
    created = await start(capi, resource.id, resource.company_id, provider)
    assert created["pending"] is True and created["status"] == "pending" and created["provider"] == provider
    params = query_of(created["authUrl"])
    client_id = capi.deps.settings.google.client_id if provider == "google" else capi.deps.settings.outlook.client_id
    assert params["client_id"] == client_id
    assert params["redirect_uri"] == capi.url + "/oauth/callback"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert params["state"].startswith(f"{created['id']}.") and len(params["state"]) > 40
    scopes = params["scope"].split()
    assert ("offline_access" in scopes) if provider == "outlook" else (params["access_type"] == "offline")
    assert any("calendar" in s.lower() for s in scopes)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_full_flow_activates_links_primary_and_requests_first_sync(capi: ConnectApi, provider: str) -> None:
    resource = await make_resource(capi.deps.sessions)
    email = unique_email(f"flow-{provider}")
    shown = await connect(capi, resource.id, resource.company_id, provider, email)
    assert shown["pending"] is False and shown["status"] == "active"
    assert shown["calendarEmail"] == email
    assert shown["read"] is True and shown["write"] is True  # no other write calendar yet
    [calendar] = shown["calendars"]
    assert calendar["primary"] and calendar["read"] and calendar["write"]
    assert shown["calendarId"] == calendar["calendarId"] != ""
    assert set(shown["sync"]) == {"lastSyncedAt", "lastError", "consecutiveFailures", "nextAttemptAt"}
    [link] = await _links(capi, shown["id"])
    assert link.sync_requested_at is not None  # the first sync is requested at once
    row = await _row(capi, shown["id"])
    assert row is not None and row.oauth_state_hash is None and row.pkce_verifier_enc is None


async def test_google_primary_does_not_take_an_existing_write_calendar(capi: ConnectApi) -> None:
    resource = await make_resource(capi.deps.sessions)
    company = resource.company_id
    outlook = await connect(capi, resource.id, company, "outlook", unique_email("w-ms"))
    google = await connect(capi, resource.id, company, "google", unique_email("w-g"))
    assert google["read"] is True and google["write"] is False
    assert (await connection(capi, resource.id, company, outlook["id"]))["write"] is True


async def test_outlook_primary_takes_the_write_flag(capi: ConnectApi) -> None:
    resource = await make_resource(capi.deps.sessions)
    company = resource.company_id
    google = await connect(capi, resource.id, company, "google", unique_email("t-g"))
    assert google["write"] is True
    outlook = await connect(capi, resource.id, company, "outlook", unique_email("t-ms"))
    assert outlook["write"] is True
    assert (await connection(capi, resource.id, company, google["id"]))["write"] is False


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_response_never_carries_a_token(capi: ConnectApi, provider: str) -> None:
    resource = await make_resource(capi.deps.sessions)
    shown = await connect(capi, resource.id, resource.company_id, provider, unique_email("nt"))
    row = await _row(capi, shown["id"])
    assert row is not None and row.refresh_token_enc and row.access_token_enc
    refresh = capi.deps.cipher.decrypt(row.refresh_token_enc)
    access = capi.deps.cipher.decrypt(row.access_token_enc)
    async with capi.http.get(
        f"{capi.url}/v3/resource/{resource.id}/externalCalendars", headers=capi.headers(resource.company_id)
    ) as resp:
        raw = await resp.text()
    assert refresh not in raw and access not in raw and "token" not in raw.lower()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_database_dump_holds_no_plaintext_secret(capi: ConnectApi, provider: str) -> None:
    resource = await make_resource(capi.deps.sessions)
    created = await start(capi, resource.id, resource.company_id, provider)
    state = query_of(created["authUrl"])["state"]
    location = await consent(capi.http, created["authUrl"], unique_email("dump"))
    async with capi.deps.sessions() as session:
        pending = await session.get(ExternalCalendar, created["id"])
        assert pending is not None and pending.pkce_verifier_enc is not None
        verifier = capi.deps.cipher.decrypt(pending.pkce_verifier_enc)
    assert (await open_callback(capi.http, location)).code == "connected"
    row = await _row(capi, created["id"])
    assert row is not None and row.refresh_token_enc and row.access_token_enc
    secrets = [
        capi.deps.cipher.decrypt(row.refresh_token_enc),
        capi.deps.cipher.decrypt(row.access_token_enc),
        state,
        state.partition(".")[2],
        verifier,
    ]
    dump = await _dump_text_columns(capi, "external_calendars")
    dump += await _dump_text_columns(capi, "calendar_links")
    assert dump, "the dump must not be empty"
    for secret in secrets:
        assert all(secret not in value for value in dump)


async def _dump_text_columns(api: ConnectApi, table: str) -> list[str]:
    """Every text-typed value of a table, as `pg_dump` would show it."""
    async with api.deps.engine.connect() as conn:
        columns = (
            await conn.execute(
                text(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = :t "
                    "AND data_type IN ('text', 'character varying')"
                ),
                {"t": table},
            )
        ).scalars()
        values: list[str] = []
        for column in list(columns):
            rows = await conn.execute(text(f'SELECT "{column}" FROM {table} WHERE "{column}" IS NOT NULL'))
            values += [str(v) for v in rows.scalars()]
        return values


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_delete_removes_rows_purges_cache_and_is_harmless_twice(capi: ConnectApi, provider: str) -> None:
    resource = await make_resource(capi.deps.sessions)
    company = resource.company_id
    shown = await connect(capi, resource.id, company, provider, unique_email("del"))
    [link] = await _links(capi, shown["id"])
    async with capi.deps.sessions() as session, session.begin():
        session.add(
            Unavailability(
                resource_id=resource.id,
                link_id=link.id,
                provider_event_id="evt-1",
                start_at=capi.deps.clock.now(),
                end_at=capi.deps.clock.now().replace(year=2100),
            )
        )
    before = int(await capi.deps.redis.get(version_key(capi.deps.prefix, resource.id)) or 0)
    path = f"/v3/resource/{resource.id}/externalCalendar/{shown['id']}"
    await capi.call("DELETE", path, company, expect=204)
    assert await _row(capi, shown["id"]) is None
    async with capi.deps.sessions() as session:
        left = await session.execute(select(Unavailability).where(Unavailability.resource_id == resource.id))
        assert left.first() is None
    assert int(await capi.deps.redis.get(version_key(capi.deps.prefix, resource.id)) or 0) > before
    _, body = await capi.call("GET", f"/v3/resource/{resource.id}/externalCalendars", company, expect=200)
    assert body["externalCalendars"] == []
    status, again = await capi.call("DELETE", path, company)
    assert status == 404 and again["error"]["code"] == "external_calendar_not_found"


async def _refresh_works(api: ConnectApi, provider: str, refresh_token: str) -> bool:
    s = api.deps.settings
    if provider == "google":
        url, cid, secret = s.google.token_url, s.google.client_id, s.google.client_secret
    else:
        url = f"{s.outlook.authority}/{s.outlook.tenant}/oauth2/v2.0/token"
        cid, secret = s.outlook.client_id, s.outlook.client_secret
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": cid,
        "client_secret": secret.get_secret_value(),
    }
    async with api.http.post(url, data=form) as resp:
        return resp.status == 200


async def _eventually(predicate: Any, *, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_delete_revokes_the_google_grant(capi: ConnectApi) -> None:
    resource = await make_resource(capi.deps.sessions)
    shown = await connect(capi, resource.id, resource.company_id, "google", unique_email("rv"))
    row = await _row(capi, shown["id"])
    assert row is not None and row.refresh_token_enc
    refresh = capi.deps.cipher.decrypt(row.refresh_token_enc)
    assert await _refresh_works(capi, "google", refresh)
    path = f"/v3/resource/{resource.id}/externalCalendar/{shown['id']}"
    await capi.call("DELETE", path, resource.company_id, expect=204)

    async def revoked() -> bool:
        return not await _refresh_works(capi, "google", refresh)

    await _eventually(revoked)


async def test_delete_succeeds_while_google_is_down_and_revokes_later(capi: ConnectApi) -> None:
    resource = await make_resource(capi.deps.sessions)
    shown = await connect(capi, resource.id, resource.company_id, "google", unique_email("down"))
    row = await _row(capi, shown["id"])
    assert row is not None and row.refresh_token_enc
    refresh = capi.deps.cipher.decrypt(row.refresh_token_enc)
    since = max((r["seq"] for r in await capi.sandbox.control.requests()), default=0)
    # More failures than one request's own retries allow, so the job-level retry is needed too.
    attempts = capi.deps.settings.http.retry_attempts
    await capi.sandbox.control.add_fault(provider="google", path="^/revoke", status=503, count=attempts + 1)
    try:
        started = time.monotonic()
        await capi.call(
            "DELETE", f"/v3/resource/{resource.id}/externalCalendar/{shown['id']}", resource.company_id, expect=204
        )
        assert time.monotonic() - started < 2.0
        assert await _row(capi, shown["id"]) is None

        async def revoked() -> bool:
            return not await _refresh_works(capi, "google", refresh)

        await _eventually(revoked, within=20.0)
    finally:
        await capi.sandbox.control.clear_faults()
    revokes = [r for r in await capi.sandbox.control.requests("google", since) if r["path"] == "/revoke"]
    assert len(revokes) > attempts  # failed ones, then the one that worked


async def test_outlook_delete_forgets_tokens(capi: ConnectApi) -> None:
    resource = await make_resource(capi.deps.sessions)
    shown = await connect(capi, resource.id, resource.company_id, "outlook", unique_email("ms-del"))
    await capi.call(
        "DELETE", f"/v3/resource/{resource.id}/externalCalendar/{shown['id']}", resource.company_id, expect=204
    )
    dump = await _dump_text_columns(capi, "external_calendars")
    assert all(shown["calendarEmail"] != value for value in dump)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_remove_resource_disconnects_first(capi: ConnectApi, provider: str) -> None:
    resource = await make_resource(capi.deps.sessions)
    shown = await connect(capi, resource.id, resource.company_id, provider, unique_email("rm"))
    await capi.call("DELETE", f"/v3/resource/{resource.id}", resource.company_id, expect=204)
    assert await _row(capi, shown["id"]) is None
    status, _ = await capi.call("GET", f"/v3/resource/{resource.id}/externalCalendars", resource.company_id)
    assert status == 404
    status, _ = await capi.call("DELETE", f"/v3/resource/{resource.id}", resource.company_id)
    assert status == 404


async def test_create_resource_over_http(capi: ConnectApi) -> None:
    company = f"co-{time.monotonic_ns()}"
    rid = f"res-{time.monotonic_ns()}"
    body = {"id": rid, "name": "Room 1", "timezone": "Europe/Berlin"}
    _, made = await capi.call("POST", "/v3/resource", company, json=body, expect=201)
    assert made == {"id": rid, "companyId": company, "name": "Room 1", "timezone": "Europe/Berlin"}
    status, err = await capi.call("POST", "/v3/resource", company, json=body)
    assert status == 409 and err["error"]["code"] == "resource_exists"
    status, err = await capi.call("POST", "/v3/resource", company, json={"timezone": "Mars/Olympus"})
    assert status == 400 and "timezone" in err["error"]["message"]
    status, err = await capi.call("POST", "/v3/resource", company, json={"name": "a\u0000b"})
    assert status == 400 and "name" in err["error"]["message"]
    status, err = await capi.call("POST", "/v3/resource", company, json={"id": "has space"})
    assert status == 400 and "id" in err["error"]["message"]
    _, generated = await capi.call("POST", "/v3/resource", company, json={}, expect=201)
    assert generated["timezone"] == "UTC" and generated["id"]


async def test_disconnect_hooks_run_with_the_links_and_a_failing_hook_does_not_stop_the_revoke(
    capi: ConnectApi,
) -> None:
    from jobs import connect as connect_job

    resource = await make_resource(capi.deps.sessions)
    shown = await connect(capi, resource.id, resource.company_id, "google", unique_email("hook"))
    row = await _row(capi, shown["id"])
    assert row is not None and row.refresh_token_enc
    refresh = capi.deps.cipher.decrypt(row.refresh_token_enc)
    calls: list[tuple[int, list[str]]] = []

    async def failing(deps: Any, connection: Any, links: Any) -> None:
        raise RuntimeError("push provider down")

    async def recording(deps: Any, connection: Any, links: Any) -> None:
        calls.append((connection.id, [link.calendar_id for link in links]))

    connect_job.DISCONNECT_HOOKS.extend([failing, recording])
    try:
        path = f"/v3/resource/{resource.id}/externalCalendar/{shown['id']}"
        await capi.call("DELETE", path, resource.company_id, expect=204)

        async def revoked() -> bool:
            return not await _refresh_works(capi, "google", refresh)

        await _eventually(revoked)
    finally:
        connect_job.DISCONNECT_HOOKS.remove(failing)
        connect_job.DISCONNECT_HOOKS.remove(recording)
    assert calls == [(shown["id"], [shown["calendarId"]])]


async def test_every_status_seen_here_is_declared(capi: ConnectApi) -> None:
    assert capi.seen, "the tests above must have recorded responses"
    assert undeclared(capi.seen) == []
    assert capi.nonconforming == []
