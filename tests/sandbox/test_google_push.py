"""Google push: watch channels, sync/exists messages, headers, expiry, stop, retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.sandbox.conftest import GoogleUser, Receiver

EVENTS = "/calendars/primary/events"
EVENT = {"start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"}}


def reason(body: dict[str, Any]) -> str:
    """errors[0].reason of a Google error body."""
    return str(body["error"]["errors"][0]["reason"])


async def watch(guser: GoogleUser, address: str, channel_id: str = "chan-a", **extra: Any) -> dict[str, Any]:
    """Open a channel on the primary calendar."""
    spec = {"id": channel_id, "type": "web_hook", "address": address, "token": "tok-1", **extra}
    return await guser.ok("POST", f"{EVENTS}/watch", json=spec)  # type: ignore[no-any-return]


async def test_sync_then_exists_with_rising_numbers(guser: GoogleUser, receiver: Receiver) -> None:
    channel = await watch(guser, receiver.url)
    await guser.ok("POST", EVENTS, json=EVENT)
    await guser.sb.control.create_event("google", guser.email, EVENT)
    await guser.sb.control.drain()
    states = [(h["X-Goog-Resource-State"], int(h["X-Goog-Message-Number"])) for h in receiver.received]
    assert sorted(states, key=lambda s: s[1]) == [("sync", 1), ("exists", 2), ("exists", 3)]
    first = next(h for h in receiver.received if h["X-Goog-Resource-State"] == "sync")
    assert first["X-Goog-Channel-ID"] == "chan-a"
    assert first["X-Goog-Channel-Token"] == "tok-1"
    assert first["X-Goog-Resource-ID"] == channel["resourceId"]
    assert first["X-Goog-Resource-URI"] == channel["resourceUri"]
    assert first["X-Goog-Channel-Expiration"].endswith("GMT")


async def test_bulk_load_sends_one_message(guser: GoogleUser, receiver: Receiver) -> None:
    await watch(guser, receiver.url)
    await guser.sb.control.bulk_load("google", guser.email, [EVENT] * 50)
    await guser.sb.control.drain()
    assert [h["X-Goog-Resource-State"] for h in receiver.received] == ["sync", "exists"]


async def test_stopped_channel_sends_nothing(guser: GoogleUser, receiver: Receiver) -> None:
    channel = await watch(guser, receiver.url)
    stop = {"id": channel["id"], "resourceId": channel["resourceId"]}
    assert (await guser.call("POST", "/channels/stop", json=stop))[0] == 204
    await guser.ok("POST", EVENTS, json=EVENT)
    await guser.sb.control.drain()
    assert len(receiver.received) == 1
    status, body, _ = await guser.call("POST", "/channels/stop", json=stop)
    assert (status, reason(body)) == (404, "notFound")


async def test_expired_channel_sends_nothing(guser: GoogleUser, receiver: Receiver) -> None:
    await watch(guser, receiver.url, params={"ttl": "60"})
    real_clock = guser.sb.ctx.clock
    later = real_clock() + timedelta(seconds=61)
    guser.sb.ctx.clock = lambda: later
    try:
        await guser.sb.control.create_event("google", guser.email, EVENT)
    finally:
        guser.sb.ctx.clock = real_clock
    await guser.sb.control.drain()
    assert len(receiver.received) == 1


async def test_expiration_is_capped_by_setting(guser: GoogleUser, receiver: Receiver) -> None:
    await guser.sb.control.settings(channel_max_ttl=120)
    far = int((datetime.now(UTC) + timedelta(days=30)).timestamp() * 1000)
    channel = await watch(guser, receiver.url, expiration=far)
    expires = datetime.fromtimestamp(int(channel["expiration"]) / 1000, UTC)
    assert expires <= datetime.now(UTC) + timedelta(seconds=121)
    near = int((datetime.now(UTC) + timedelta(seconds=30)).timestamp() * 1000)
    assert int((await watch(guser, receiver.url, "chan-b", expiration=near))["expiration"]) == near


async def test_channel_errors(guser: GoogleUser, receiver: Receiver) -> None:
    await watch(guser, receiver.url)
    spec = {"id": "chan-a", "type": "web_hook", "address": receiver.url}
    status, body, _ = await guser.call("POST", f"{EVENTS}/watch", json=spec)
    assert (status, reason(body)) == (400, "channelIdNotUnique")
    status, body, _ = await guser.call("POST", f"{EVENTS}/watch", json={**spec, "id": "c2", "type": "email"})
    assert (status, reason(body)) == (400, "push.channelTypeNotSupported")
    await guser.sb.control.settings(allow_http_push=False)
    status, body, _ = await guser.call("POST", f"{EVENTS}/watch", json={**spec, "id": "c3"})
    assert (status, reason(body)) == (400, "push.webhookUrlNotHttps")


async def test_5xx_is_retried_and_4xx_is_not(guser: GoogleUser, receiver: Receiver) -> None:
    await guser.sb.control.settings(delivery_retry_base=0.01)
    receiver.statuses = [503, 500]
    await watch(guser, receiver.url)
    await guser.sb.control.drain()
    log = await guser.sb.control.deliveries("google")
    assert [(e["attempt"], e["status"], e["outcome"]) for e in log] == [
        (1, 503, "retrying"),
        (2, 500, "retrying"),
        (3, 200, "delivered"),
    ]
    receiver.statuses = [404]
    await guser.sb.control.create_event("google", guser.email, EVENT)
    await guser.sb.control.drain()
    assert (await guser.sb.control.deliveries("google"))[-1]["outcome"] == "failed"
    assert len(receiver.received) == 4


async def test_retries_stop_at_max_attempts(guser: GoogleUser, receiver: Receiver) -> None:
    await guser.sb.control.settings(delivery_retry_base=0.01, delivery_max_attempts=2)
    receiver.statuses = [502, 502, 502]
    await watch(guser, receiver.url)
    await guser.sb.control.drain()
    outcomes = [e["outcome"] for e in await guser.sb.control.deliveries("google")]
    assert outcomes == ["retrying", "failed"]


async def test_watch_of_other_calendar_only(guser: GoogleUser, receiver: Receiver) -> None:
    second = await guser.sb.control.add_calendar("google", guser.email, "Other")
    spec = {"id": "chan-o", "type": "web_hook", "address": receiver.url}
    await guser.ok("POST", f"/calendars/{second['id']}/events/watch", json=spec)
    await guser.ok("POST", EVENTS, json=EVENT)
    await guser.ok("POST", f"/calendars/{second['id']}/events", json=EVENT)
    await guser.sb.control.drain()
    assert [h["X-Goog-Resource-State"] for h in receiver.received] == ["sync", "exists"]
    assert "X-Goog-Channel-Token" not in receiver.received[0]
