"""Outbound webhooks: registration, signed at-least-once delivery, retries, redelivery."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from jobs import notify
from tests.conftest import Api
from tests.factories import make_connection, make_resource
from worker.config import with_overrides
from worker.db.connections import mark_reauth_required
from worker.db.notifications import enqueue_event
from worker.signing import HEADER, verify


@dataclass
class Receiver:
    """A real HTTP server that records what it receives; `status` sets its answer."""

    url: str = ""
    status: int = 200
    delay: float = 0.0
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()

    async def handle(request: web.Request) -> web.Response:
        await asyncio.sleep(rec.delay)
        rec.received.append((dict(request.headers), await request.read()))
        return web.Response(status=rec.status)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]
    yield rec
    await runner.cleanup()


async def _register(api: Api, company: str, url: str, types: list[str]) -> dict[str, Any]:
    async with api.session.post(
        f"{api.url}/v3/webhooks", json={"url": url, "eventTypes": types}, headers=api.headers(company)
    ) as resp:
        assert resp.status == 201, await resp.text()
        return dict(await resp.json())


async def _emit(api: Api, company: str, event_type: str = "appointment.conflict") -> None:
    async with api.deps.sessions() as session, session.begin():
        await enqueue_event(
            session=session,
            company_id=company,
            event_type=event_type,
            resource_id="r1",
            obj={"x": 1},
            now=api.deps.clock.now(),
        )


async def test_reauth_required_is_delivered_once_signed_and_verifiable(api: Api, receiver: Receiver) -> None:
    resource = await make_resource(api.deps.sessions)
    company = resource.company_id
    hook = await _register(api, company, receiver.url, ["externalCalendar.reauthRequired"])
    assert hook["secret"].startswith("whsec_")
    conn = await make_connection(api.deps.sessions, resource=resource, status="active")
    for _ in range(2):  # the second transition is not a transition: one event only
        async with api.deps.sessions() as session, session.begin():
            await mark_reauth_required(
                session=session, connection_id=conn.id, reason="invalid_grant", now=api.deps.clock.now()
            )
    assert (await notify.run_once(api.deps))["delivered"] == 1
    headers, body = receiver.received[0]
    payload = json.loads(body)
    assert payload["type"] == "externalCalendar.reauthRequired" and payload["companyId"] == company
    assert payload["object"]["externalCalendarId"] == conn.id
    assert verify(hook["secret"], headers[HEADER], body, now=int(time.time()))
    assert not verify(
        hook["secret"], headers[HEADER], body.replace(b"invalid_grant", b"tampered!!!!"), now=int(time.time())
    )
    assert not verify("whsec_wrong", headers[HEADER], body, now=int(time.time()))
    assert (await notify.run_once(api.deps))["delivered"] == 0


async def test_receiver_down_gets_every_event_later_with_stable_ids(api: Api, receiver: Receiver) -> None:
    company = "co-down"
    await _register(api, company, receiver.url, ["appointment.conflict"])
    receiver.status = 503
    for _ in range(3):
        await _emit(api, company)
    fast = with_overrides(api.deps.settings, notify={"backoff_base_seconds": 0.01, "backoff_cap_seconds": 0.02})
    deps = type(api.deps)(**{**api.deps.__dict__, "settings": fast})
    assert (await notify.run_once(deps))["failed"] == 3
    receiver.status = 200
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while len(receiver.received) < 6 and loop.time() < deadline:
        await notify.run_once(deps)
        await asyncio.sleep(0.01)
    ids = [b["id"] for b in receiver.bodies()]
    assert len(set(ids)) == 3  # every event arrived
    assert len(ids) == 6  # each twice: once refused, once accepted, with the same id both times


async def test_deliveries_listed_and_redelivered(api: Api, receiver: Receiver) -> None:
    company = "co-list"
    hook = await _register(api, company, receiver.url, ["appointment.conflict"])
    await _emit(api, company)
    await notify.run_once(api.deps)
    url = f"{api.url}/v3/webhooks/{hook['id']}/deliveries"
    async with api.session.get(url, headers=api.headers(company)) as resp:
        deliveries = (await resp.json())["deliveries"]
    assert [d["status"] for d in deliveries] == ["delivered"]
    async with api.session.post(f"{url}/{deliveries[0]['id']}/redeliver", headers=api.headers(company)) as resp:
        assert resp.status == 202
    await notify.run_once(api.deps)
    assert [b["id"] for b in receiver.bodies()] == [deliveries[0]["eventId"]] * 2
    async with api.session.get(url, headers=api.headers("someone-else")) as resp:
        assert resp.status == 404


async def test_slow_receiver_is_cut_off_by_the_timeout(api: Api, receiver: Receiver) -> None:
    company = "co-slow"
    await _register(api, company, receiver.url, ["appointment.conflict"])
    await _emit(api, company)
    receiver.delay = 2.0
    quick = with_overrides(api.deps.settings, notify={"timeout_seconds": 0.2})
    deps = type(api.deps)(**{**api.deps.__dict__, "settings": quick})
    started = asyncio.get_running_loop().time()
    assert (await notify.run_once(deps))["failed"] == 1
    assert asyncio.get_running_loop().time() - started < 1.5


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"url": "ftp://x", "eventTypes": ["appointment.conflict"]}, "url"),
        ({"url": "https://x.test/h", "eventTypes": ["nope"]}, "unknown event types"),
        ({"url": "https://x.test/h", "eventTypes": []}, "eventTypes"),
        ({"url": "https://x.test/h", "eventTypes": ["appointment.conflict"], "extra": 1}, "extra"),
    ],
)
async def test_bad_registrations_are_400(api: Api, body: dict[str, Any], fragment: str) -> None:
    async with api.session.post(f"{api.url}/v3/webhooks", json=body, headers=api.headers("co-bad")) as resp:
        assert resp.status == 400
        assert fragment in (await resp.json())["error"]["message"]


async def test_secret_rotation_signs_with_both_during_overlap(api: Api, receiver: Receiver) -> None:
    company = "co-rotate"
    hook = await _register(api, company, receiver.url, ["appointment.conflict"])
    async with api.session.post(
        f"{api.url}/v3/webhooks/{hook['id']}/rotateSecret", headers=api.headers(company)
    ) as resp:
        rotated = await resp.json()
    await _emit(api, company)
    await notify.run_once(api.deps)
    headers, body = receiver.received[0]
    now = int(time.time())
    assert verify(rotated["secret"], headers[HEADER], body, now=now)
    assert verify(hook["secret"], headers[HEADER], body, now=now)
