"""Delivery knobs (drop, duplicate, delay) and the delivery log, through Google push."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.sandbox.conftest import GoogleUser, Receiver

EVENT = {"start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"}}


async def open_channel(guser: GoogleUser, receiver: Receiver) -> None:
    """A channel to the receiver; its `sync` message is the first delivery."""
    spec = {"id": "chan-d", "type": "web_hook", "address": receiver.url}
    await guser.ok("POST", "/calendars/primary/events/watch", json=spec)


async def changes(guser: GoogleUser, n: int) -> None:
    """N user-side changes, then wait for their deliveries."""
    for _ in range(n):
        await guser.sb.control.create_event("google", guser.email, EVENT)
    await guser.sb.control.drain()


async def test_drop_count(guser: GoogleUser, receiver: Receiver) -> None:
    await guser.sb.control.delivery("google", drop=2)
    await open_channel(guser, receiver)
    await changes(guser, 2)
    assert [h["X-Goog-Message-Number"] for h in receiver.received] == ["3"]
    outcomes = [e["outcome"] for e in await guser.sb.control.deliveries("google")]
    assert outcomes == ["dropped", "dropped", "delivered"]


async def test_drop_fraction_all(guser: GoogleUser, receiver: Receiver) -> None:
    await guser.sb.control.delivery(drop_fraction=1.0)
    await open_channel(guser, receiver)
    await changes(guser, 3)
    assert receiver.received == []


async def test_duplicate(guser: GoogleUser, receiver: Receiver) -> None:
    await guser.sb.control.delivery("google", duplicate=1)
    await open_channel(guser, receiver)
    await changes(guser, 1)
    numbers = sorted(h["X-Goog-Message-Number"] for h in receiver.received)
    assert numbers == ["1", "1", "2"]


async def test_delay(guser: GoogleUser, receiver: Receiver) -> None:
    await guser.sb.control.delivery("google", delay_ms=300)
    started = datetime.now().astimezone()
    await open_channel(guser, receiver)
    assert receiver.received == []  # the watch call did not wait for the delivery
    await guser.sb.control.drain()
    delivered = datetime.fromisoformat((await guser.sb.control.deliveries())[0]["timestamp"])
    assert len(receiver.received) == 1
    assert (delivered - started).total_seconds() >= 0.3


async def test_knobs_of_another_provider_do_not_apply(guser: GoogleUser, receiver: Receiver) -> None:
    await guser.sb.control.delivery("microsoft", drop=5)
    await open_channel(guser, receiver)
    await guser.sb.control.drain()
    assert len(receiver.received) == 1


async def test_log_entry_shape(guser: GoogleUser, receiver: Receiver) -> None:
    await open_channel(guser, receiver)
    await guser.sb.control.drain()
    entry: dict[str, Any] = (await guser.sb.control.deliveries("google"))[0]
    assert entry["url"] == receiver.url and entry["status"] == 200 and entry["attempt"] == 1
    assert entry["headers"]["X-Goog-Resource-State"] == "sync" and entry["body"] == ""


@pytest.mark.parametrize("spec", [{"drop": 1, "colour": "red"}])
async def test_unknown_knob_is_400(guser: GoogleUser, spec: dict[str, Any]) -> None:
    async with guser.session.post(f"{guser.sb.url}/_sandbox/delivery", json=spec) as resp:
        assert resp.status == 400


async def test_unreachable_address_is_retried_then_fails(guser: GoogleUser) -> None:
    await guser.sb.control.settings(delivery_retry_base=0.01, delivery_max_attempts=2)
    spec = {"id": "chan-x", "type": "web_hook", "address": "http://127.0.0.1:9/nothing"}
    await guser.ok("POST", "/calendars/primary/events/watch", json=spec)
    await guser.sb.control.drain()
    log = await guser.sb.control.deliveries("google")
    assert [(e["status"], e["outcome"]) for e in log] == [(None, "retrying"), (None, "failed")]
    assert log[0]["error"]
