"""PUT/DELETE/GET /v3/resource/{id}/appointments/{appointmentId}: versioned, one transaction, 202."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from sqlalchemy import select

from jobs import write
from tests.conftest import Api
from tests.factories import make_resource
from worker import cache, wakeups
from worker.db.tables import Appointment, WriteOutbox


def body(version: Any = 1, **kw: Any) -> dict[str, Any]:
    return {
        "start": "2030-05-01T10:00:00+02:00",
        "end": "2030-05-01T11:00:00+02:00",
        "status": "confirmed",
        "title": "Haircut",
        "attendees": ["ann@example.com"],
        "version": version,
    } | kw


def url(api: Api, resource_id: str, appointment_id: str) -> str:
    return f"{api.url}/v3/resource/{resource_id}/appointments/{appointment_id}"


async def call(api: Api, method: str, target: str, company: str, **kw: Any) -> tuple[int, Any]:
    async with api.session.request(method, target, headers=api.headers(company), **kw) as resp:
        return resp.status, await resp.json()


async def next_message(pubsub: Any, seconds: float = 2.0) -> Any:
    """The next published message (the subscribe confirmation is skipped), or None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        message = await pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
        if message is not None:
            return message
    return None


async def stored(api: Api, appointment_id: str) -> tuple[Appointment | None, WriteOutbox | None]:
    async with api.deps.sessions() as session:
        appt = await session.get(Appointment, appointment_id)
        entry = (
            await session.execute(select(WriteOutbox).where(WriteOutbox.appointment_id == appointment_id))
        ).scalar_one_or_none()
        return appt, entry


async def test_put_stores_appointment_and_outbox_entry_and_answers_202(api: Api) -> None:
    res = await make_resource(api.deps.sessions)
    appt_id = f"appt-{secrets.token_hex(4)}"
    purged_before = await cache.current_version(api.deps.redis, api.deps.prefix, res.id)
    pubsub = api.deps.redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(wakeups.channel(api.deps.prefix, wakeups.OUTBOX))
    try:
        status, answer = await call(api, "PUT", url(api, res.id, appt_id), res.company_id, json=body())
        woken = await next_message(pubsub)
    finally:
        await pubsub.aclose()
    assert (status, answer) == (202, {"appointmentId": appt_id, "version": 1, "ignored": False})
    assert woken is not None
    assert await cache.current_version(api.deps.redis, api.deps.prefix, res.id) == purged_before + 1
    appt, entry = await stored(api, appt_id)
    assert appt is not None and entry is not None
    assert (appt.status, appt.version, appt.title, appt.attendees) == ("confirmed", 1, "Haircut", ["ann@example.com"])
    assert appt.start_at.isoformat() == "2030-05-01T08:00:00+00:00"
    assert (entry.state, entry.resource_id) == ("pending", res.id)
    status, got = await call(api, "GET", url(api, res.id, appt_id), res.company_id)
    assert status == 200
    assert got["start"] == "2030-05-01T08:00:00Z"
    assert got["write"]["state"] == "pending" and got["write"]["providerEventId"] is None


async def test_older_or_equal_version_is_acknowledged_and_ignored(api: Api) -> None:
    res = await make_resource(api.deps.sessions)
    target = url(api, res.id, f"appt-{secrets.token_hex(4)}")
    assert (await call(api, "PUT", target, res.company_id, json=body(5, title="five")))[0] == 202
    for version in (5, 4):
        status, answer = await call(api, "PUT", target, res.company_id, json=body(version, title="old"))
        assert (status, answer["ignored"]) == (200, True)
    status, got = await call(api, "GET", target, res.company_id)
    assert (got["title"], got["version"]) == ("five", 5)
    assert (await call(api, "PUT", target, res.company_id, json=body(6, title="six")))[0] == 202
    assert (await call(api, "GET", target, res.company_id))[1]["title"] == "six"


async def test_delete_cancels_at_next_version_once(api: Api) -> None:
    res = await make_resource(api.deps.sessions)
    appt_id = f"appt-{secrets.token_hex(4)}"
    target = url(api, res.id, appt_id)
    await call(api, "PUT", target, res.company_id, json=body(3))
    assert await call(api, "DELETE", target, res.company_id) == (
        202,
        {"appointmentId": appt_id, "version": 4, "ignored": False},
    )
    assert (await call(api, "DELETE", target, res.company_id))[1]["ignored"] is True
    appt, entry = await stored(api, appt_id)
    assert appt is not None and entry is not None and (appt.status, appt.version) == ("cancelled", 4)
    # With the main API's own version: an older one is ignored, a newer one applies.
    assert (await call(api, "DELETE", target, res.company_id, json={"version": 4}))[1]["ignored"] is True
    assert (await call(api, "PUT", target, res.company_id, json=body(7)))[0] == 202
    assert (await call(api, "DELETE", target, res.company_id, json={"version": 8}))[0] == 202
    appt, _ = await stored(api, appt_id)
    assert appt is not None and (appt.status, appt.version) == ("cancelled", 8)


async def test_delete_of_unknown_appointment_is_404(api: Api) -> None:
    res = await make_resource(api.deps.sessions)
    status, answer = await call(api, "DELETE", url(api, res.id, "nope"), res.company_id)
    assert (status, answer["error"]["code"]) == (404, "appointment_not_found")
    status, answer = await call(api, "GET", url(api, res.id, "nope"), res.company_id)
    assert (status, answer["error"]["code"]) == (404, "appointment_not_found")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (body(version="3"), "version"),
        (body(version=-1), "version"),
        (body(start=1893456000), "start"),
        (body(start="2030-05-01T10:00:00"), "start"),
        (body(end="2030-05-01T09:00:00+02:00"), "end must be after start"),
        (body(status="tentative"), "status"),
        (body(attendees=["not-an-email"]), "attendees"),
        (body(colour="red"), "colour"),
        ({k: v for k, v in body().items() if k != "title"}, "title"),
        ([body()], "JSON object"),
    ],
)
async def test_bad_bodies_are_clear_400s(api: Api, payload: Any, field: str) -> None:
    res = await make_resource(api.deps.sessions)
    target = url(api, res.id, f"appt-{secrets.token_hex(4)}")
    status, answer = await call(api, "PUT", target, res.company_id, json=payload)
    assert status == 400
    assert field in answer["error"]["message"]


async def test_malformed_json_is_400(api: Api) -> None:
    res = await make_resource(api.deps.sessions)
    target = url(api, res.id, "a1")
    status, answer = await call(api, "PUT", target, res.company_id, data=b"{not json")
    assert (status, answer["error"]["code"]) == (400, "invalid_json")
    status, answer = await call(api, "DELETE", target, res.company_id, data=b"{not json")
    assert (status, answer["error"]["code"]) == (400, "invalid_json")


async def test_every_route_checks_token_and_company(api: Api) -> None:
    res = await make_resource(api.deps.sessions)
    other = await make_resource(api.deps.sessions)
    target = url(api, res.id, "a2")
    for method in ("PUT", "DELETE", "GET"):
        async with api.session.request(method, target, json=body()) as resp:
            assert resp.status == 401
        status, answer = await call(api, method, target, other.company_id, json=body())
        assert (status, answer["error"]["code"]) == (404, "resource_not_found")
    assert (await stored(api, "a2")) == (None, None)


async def test_an_appointment_id_of_another_company_cannot_be_taken_over(api: Api) -> None:
    res = await make_resource(api.deps.sessions)
    other = await make_resource(api.deps.sessions)
    appt_id = f"appt-{secrets.token_hex(4)}"
    assert (await call(api, "PUT", url(api, res.id, appt_id), res.company_id, json=body(1)))[0] == 202
    status, answer = await call(api, "PUT", url(api, other.id, appt_id), other.company_id, json=body(2))
    assert (status, answer["error"]["code"]) == (409, "appointment_conflict")
    appt, _ = await stored(api, appt_id)
    assert appt is not None and (appt.resource_id, appt.version) == (res.id, 1)


async def test_writes_waiting_for_a_write_calendar_show_in_external_calendars(api: Api) -> None:

    res = await make_resource(api.deps.sessions)
    status, _ = await call(api, "PUT", url(api, res.id, f"appt-{secrets.token_hex(4)}"), res.company_id, json=body())
    assert status == 202
    await write.run_once(api.deps)  # no write calendar: the entry waits, visibly
    target = f"{api.url}/v3/resource/{res.id}/externalCalendars"
    status, answer = await call(api, "GET", target, res.company_id)
    assert status == 200
    assert answer["appointmentWrites"] == {"pending": 0, "waitingCalendar": 1, "failed": 0}
