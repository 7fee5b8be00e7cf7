"""Google watch channels and Graph subscriptions, with a real receiver on loopback."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from providers.google.client import GoogleCalendarClient
from providers.outlook.client import GraphCalendarClient
from providers.sandbox import Sandbox

from .conftest import MakeAccount


class Receiver:
    """A loopback webhook endpoint: echoes Graph validation tokens, records every POST."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        if "validationToken" in request.query:
            return web.Response(text=request.query["validationToken"], content_type="text/plain")
        self.posts.append((dict(request.headers), await request.read()))
        return web.Response(status=202)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/hook"
    yield rec
    await runner.cleanup()


async def test_google_watch_and_unwatch(sandbox: Sandbox, account: MakeAccount, receiver: Receiver) -> None:
    acct = await account("google")
    assert isinstance(acct.client, GoogleCalendarClient)
    channel_id = uuid.uuid4().hex

    channel = await acct.client.watch(
        acct.calendar_id, channel_id=channel_id, address=receiver.url, token="tok-1", ttl_seconds=3600
    )

    assert channel.id == channel_id and channel.resource_id and channel.token == "tok-1"
    assert channel.expires_at is not None
    assert timedelta(minutes=50) < channel.expires_at - datetime.now(UTC) <= timedelta(hours=1, minutes=1)
    await sandbox.control.drain()
    assert any(h.get("X-Goog-Channel-ID") == channel_id for h, _ in receiver.posts)

    await acct.client.unwatch(channel.id, channel.resource_id)
    await acct.client.unwatch(channel.id, channel.resource_id)  # already stopped: still fine


async def test_graph_subscribe_renew_unsubscribe(sandbox: Sandbox, account: MakeAccount, receiver: Receiver) -> None:
    acct = await account("microsoft")
    assert isinstance(acct.client, GraphCalendarClient)
    wanted = datetime.now(UTC) + timedelta(hours=48)

    sub = await acct.client.subscribe(
        acct.calendar_id,
        notification_url=receiver.url,
        lifecycle_url=receiver.url,
        client_state="state-1",
        expires_at=wanted,
    )

    assert sub.id and sub.client_state == "state-1"
    assert abs(sub.expires_at - wanted) < timedelta(seconds=2)
    renewed = await acct.client.renew(sub.id, wanted + timedelta(hours=10))
    assert renewed.id == sub.id and renewed.expires_at > sub.expires_at

    await sandbox.control.create_event(
        "microsoft", acct.email, acct.event(datetime(2026, 12, 1, 9, tzinfo=UTC)), acct.calendar_id
    )
    await sandbox.control.drain()
    assert any(b"state-1" in body for _, body in receiver.posts)

    await acct.client.unsubscribe(sub.id)
    await acct.client.unsubscribe(sub.id)  # already gone: still fine
