"""Listing a Google account's calendars and selecting read/write calendars (one write per resource)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from jobs import push
from tests.api.connect_support import ConnectApi, connect, connection, serving, start, undeclared, unique_email
from tests.factories import make_resource
from worker.cache import version_key
from worker.db.tables import CalendarLink, Unavailability


@pytest.fixture(scope="module")
async def capi(
    settings: Any, engine: Any, redis: Any, http: aiohttp.ClientSession, sandbox: Any
) -> AsyncIterator[ConnectApi]:
    async with serving(settings, engine, redis, http, sandbox) as api:
        yield api


async def _google(capi: ConnectApi, *extra_calendars: str) -> tuple[Any, dict[str, Any], dict[str, str]]:
    """A resource with one connected Google account owning extra calendars; returns ids by name."""
    resource = await make_resource(capi.deps.sessions)
    email = unique_email("sel")
    await capi.sandbox.control.create_user("google", email)
    ids = {name: (await capi.sandbox.control.add_calendar("google", email, name))["id"] for name in extra_calendars}
    shown = await connect(capi, resource.id, resource.company_id, "google", email)
    return resource, shown, ids


async def test_list_shows_the_accounts_calendars(capi: ConnectApi) -> None:
    resource, shown, ids = await _google(capi, "Team", "Holidays")
    base = f"/v3/resource/{resource.id}/externalCalendars/list"
    _, by_get = await capi.call("GET", base, resource.company_id, expect=200)
    _, by_post = await capi.call("POST", base, resource.company_id, expect=200)
    _, by_id = await capi.call("POST", base, resource.company_id, json={"externalCalendarId": shown["id"]}, expect=200)
    _, by_query = await capi.call("GET", f"{base}?externalCalendarId={shown['id']}", resource.company_id, expect=200)
    _, by_post_query = await capi.call(
        "POST", f"{base}?externalCalendarId={shown['id']}", resource.company_id, expect=200
    )
    assert by_get == by_post == by_id == by_query == by_post_query
    assert by_get["externalCalendarId"] == shown["id"]
    calendars = {c["id"]: c for c in by_get["calendars"]}
    assert set(ids.values()) < set(calendars)
    primary = [c for c in calendars.values() if c["primary"]]
    assert [c["id"] for c in primary] == [shown["calendarId"]]
    assert primary[0]["read"] and primary[0]["write"] and primary[0]["accessRole"] == "owner"
    assert calendars[ids["Team"]]["summary"] == "Team" and not calendars[ids["Team"]]["read"]


async def test_list_refuses_outlook_pending_and_strangers(capi: ConnectApi) -> None:
    resource = await make_resource(capi.deps.sessions)
    company = resource.company_id
    base = f"/v3/resource/{resource.id}/externalCalendars/list"
    status, body = await capi.call("GET", base, company)
    assert status == 404 and body["error"]["code"] == "external_calendar_not_found"
    pending = await start(capi, resource.id, company, "google")
    status, body = await capi.call("GET", base, company)
    assert status == 409 and body["error"]["code"] == "pending"
    outlook = await connect(capi, resource.id, company, "outlook", unique_email("ms"))
    status, body = await capi.call("POST", base, company, json={"externalCalendarId": outlook["id"]})
    assert status == 400 and body["error"]["code"] == "primary_only"
    status, body = await capi.call("GET", f"{base}?externalCalendarId=99999999", company)
    assert status == 404
    status, body = await capi.call("GET", f"{base}?externalCalendarId=abc", company)
    assert status == 404
    status, body = await capi.call("POST", base, company, json={"externalCalendarId": "1"})
    assert status == 400
    status, body = await capi.call("POST", base, company, json={"unknown": 1})
    assert status == 400
    assert pending["pending"] is True


async def test_select_reads_and_moves_the_write_flag(capi: ConnectApi) -> None:
    resource, shown, ids = await _google(capi, "Team", "Bookings")
    company = resource.company_id
    primary = shown["calendarId"]
    body = {"readCalendarIds": [primary, ids["Team"]], "writeCalendarId": ids["Bookings"]}
    _, selected = await capi.call(
        "POST", f"/v3/resource/{resource.id}/externalCalendars/select", company, json=body, expect=200
    )
    by_id = {c["calendarId"]: c for c in selected["calendars"]}
    assert set(by_id) == {primary, ids["Team"], ids["Bookings"]}
    assert by_id[primary]["read"] and not by_id[primary]["write"]
    assert by_id[ids["Team"]]["read"] and not by_id[ids["Team"]]["write"]
    assert by_id[ids["Bookings"]]["write"] and not by_id[ids["Bookings"]]["read"]
    async with capi.deps.sessions() as session:
        links = (await session.execute(select(CalendarLink).where(CalendarLink.connection_id == shown["id"]))).scalars()
        requested = {link.calendar_id: link.sync_requested_at for link in links}
    assert requested[ids["Team"]] is not None and requested[ids["Bookings"]] is None
    assert (await connection(capi, resource.id, company, shown["id"])) == selected


async def test_dropping_a_read_calendar_deletes_its_busy_rows_and_purges(capi: ConnectApi) -> None:
    resource, shown, ids = await _google(capi, "Team")
    company = resource.company_id
    path = f"/v3/resource/{resource.id}/externalCalendars/{shown['id']}/select"
    body = {"readCalendarIds": [shown["calendarId"], ids["Team"]], "writeCalendarId": shown["calendarId"]}
    await capi.call("POST", path, company, json=body, expect=200)
    async with capi.deps.sessions() as session, session.begin():
        team = (await session.execute(select(CalendarLink).where(CalendarLink.calendar_id == ids["Team"]))).scalar_one()
        now = capi.deps.clock.now()
        session.add(
            Unavailability(
                resource_id=resource.id,
                link_id=team.id,
                provider_event_id="e1",
                start_at=now,
                end_at=now.replace(year=2100),
            )
        )
    before = int(await capi.deps.redis.get(version_key(capi.deps.prefix, resource.id)) or 0)
    _, after = await capi.call(
        "POST", path, company, json={"readCalendarIds": [shown["calendarId"]], "writeCalendarId": None}, expect=200
    )
    assert [c["calendarId"] for c in after["calendars"]] == [shown["calendarId"]]
    assert after["write"] is False
    async with capi.deps.sessions() as session:
        rows = await session.execute(select(Unavailability).where(Unavailability.resource_id == resource.id))
        assert rows.first() is None
    assert int(await capi.deps.redis.get(version_key(capi.deps.prefix, resource.id)) or 0) > before


async def test_one_write_calendar_per_resource_across_accounts(capi: ConnectApi) -> None:
    resource, first, _ = await _google(capi)
    company = resource.company_id
    second = await connect(capi, resource.id, company, "google", unique_email("second"))
    assert first["write"] is True and second["write"] is False
    body = {"readCalendarIds": [second["calendarId"]], "writeCalendarId": second["calendarId"]}
    status, err = await capi.call("POST", f"/v3/resource/{resource.id}/externalCalendars/select", company, json=body)
    assert status == 400 and err["error"]["code"] == "external_calendar_required"
    path = f"/v3/resource/{resource.id}/externalCalendars/{second['id']}/select"
    _, now_second = await capi.call("POST", path, company, json=body, expect=200)
    assert now_second["write"] is True
    assert (await connection(capi, resource.id, company, first["id"]))["write"] is False
    # The database itself refuses a second write link.
    async with capi.deps.sessions() as session:
        with pytest.raises(IntegrityError):
            async with session.begin():
                stmt = select(CalendarLink).where(CalendarLink.connection_id == first["id"])
                link = (await session.execute(stmt)).scalar_one()
                link.write = True


async def test_select_validates_ids_and_body(capi: ConnectApi) -> None:
    resource, shown, _ = await _google(capi)
    company = resource.company_id
    path = f"/v3/resource/{resource.id}/externalCalendars/{shown['id']}/select"
    cases: list[tuple[Any, str]] = [
        ({"readCalendarIds": ["not-mine@example.com"]}, "unknown_calendar"),
        ({"readCalendarIds": [], "writeCalendarId": "nope"}, "unknown_calendar"),
        ({"readCalendarIds": "primary"}, "invalid_request"),
        ({"readCalendarIds": [1]}, "invalid_request"),
        ({"readCalendarIds": ["x" * 1025]}, "invalid_request"),
        ({"writeCalendarId": shown["calendarId"]}, "invalid_request"),
        ({"readCalendarIds": [], "extra": True}, "invalid_request"),
        ([], "invalid_request"),
    ]
    for body, code in cases:
        status, err = await capi.call("POST", path, company, json=body)
        assert (status, err["error"]["code"]) == (400, code), body
    async with capi.http.post(
        capi.url + path, data=b"{not json", headers={**capi.headers(company), "Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"
    status, _ = await capi.call("POST", f"/v3/resource/{resource.id}/externalCalendars/99999/select", company, json={})
    assert status == 404
    status, _ = await capi.call(
        "POST", f"/v3/resource/{resource.id}/externalCalendars/99999999999999999999/select", company, json={}
    )
    assert status == 404


async def test_outlook_select_is_primary_only(capi: ConnectApi) -> None:
    resource = await make_resource(capi.deps.sessions)
    shown = await connect(capi, resource.id, resource.company_id, "outlook", unique_email("ms-sel"))
    path = f"/v3/resource/{resource.id}/externalCalendars/{shown['id']}/select"
    status, err = await capi.call("POST", path, resource.company_id, json={"readCalendarIds": []})
    assert (status, err["error"]["code"]) == (400, "primary_only")


async def test_every_status_seen_here_is_declared(capi: ConnectApi) -> None:
    assert capi.seen
    assert undeclared(capi.seen) == []
    assert capi.nonconforming == []


async def test_unselecting_a_calendar_stops_its_push_channel(capi: ConnectApi) -> None:

    resource, shown, ids = await _google(capi, "Team")
    company = resource.company_id
    path = f"/v3/resource/{resource.id}/externalCalendars/{shown['id']}/select"
    await capi.call("POST", path, company, json={"readCalendarIds": [ids["Team"]]}, expect=200)
    async with capi.deps.sessions() as session:
        team = (await session.execute(select(CalendarLink).where(CalendarLink.calendar_id == ids["Team"]))).scalar_one()
    assert (await push.ensure_push(capi.deps, team.id)).status == "opened"
    since = len(await capi.sandbox.control.requests("google"))

    await capi.call("POST", path, company, json={"readCalendarIds": [], "writeCalendarId": None}, expect=200)
    await capi.deps.tasks.drain(5.0)

    stops = [r for r in (await capi.sandbox.control.requests("google"))[since:] if r["path"].endswith("/channels/stop")]
    assert len(stops) == 1
