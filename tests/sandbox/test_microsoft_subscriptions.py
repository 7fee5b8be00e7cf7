"""Graph subscriptions in the sandbox: validation handshake, lifetimes, notifications, lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.sandbox.test_microsoft_support import Graph, Receiver, new_graph, timed, wait_for

EVENT = timed("2026-12-01T09:00:00", "2026-12-01T10:00:00", subject="n")


@pytest.fixture
async def graph(sandbox: Any) -> AsyncIterator[Graph]:
    """A Graph caller for a fresh mailbox."""
    caller = await new_graph(sandbox)
    yield caller
    await caller.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on loopback."""
    hook = await Receiver().start()
    yield hook
    await hook.stop()


def expiry(minutes: float) -> str:
    """An expirationDateTime that many minutes ahead."""
    return (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


async def subscribe(graph: Graph, receiver: Receiver, **overrides: Any) -> Any:
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": f"{receiver.url}/notify",
        "lifecycleNotificationUrl": f"{receiver.url}/lifecycle",
        "resource": "/me/events",
        "expirationDateTime": expiry(120),
        "clientState": "s3cret",
        **overrides,
    }
    return await graph.call("POST", "/subscriptions", json=body)


async def test_handshake_validates_both_urls_with_a_decoded_echo(
    graph: Graph, receiver: Receiver
) -> None:
    reply = await subscribe(graph, receiver)
    assert reply.status == 201, reply.body
    assert len(receiver.validations) == 2
    assert all(" " in token and ":" in token for token in receiver.validations)  # needs decoding
    assert (
        reply.body["clientState"] == "s3cret" and reply.body["latestSupportedTlsVersion"] == "v1_2"
    )
    listed = await graph.call("GET", "/subscriptions")
    assert [s["id"] for s in listed.body["value"]] == [reply.body["id"]]


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("wrong", "must exactly match"),
        ("encoded", "must exactly match"),
        ("forbidden", "HTTP status code is '403'"),
    ],
)
async def test_bad_echo_fails_the_create(
    graph: Graph, receiver: Receiver, mode: str, message: str
) -> None:
    receiver.validation = mode
    reply = await subscribe(graph, receiver)
    assert reply.status == 400 and reply.body["error"]["code"] == "InvalidRequest"
    assert message in reply.body["error"]["message"]
    assert (await graph.call("GET", "/subscriptions")).body["value"] == []


async def test_slow_echo_times_out(graph: Graph, receiver: Receiver, sandbox: Any) -> None:
    await sandbox.control.settings(validation_timeout=0.2)
    receiver.validation = "slow"
    reply = await subscribe(graph, receiver)
    assert reply.status == 400 and "timed out" in reply.body["error"]["message"]


async def test_expiry_is_capped_and_floored(graph: Graph, receiver: Receiver, sandbox: Any) -> None:
    too_long = await subscribe(graph, receiver, expirationDateTime=expiry(4230 + 5))
    assert too_long.status == 400 and "4230 minutes" in too_long.body["error"]["message"]
    short = await subscribe(graph, receiver, expirationDateTime=expiry(5))
    assert short.status == 201
    granted = datetime.fromisoformat(short.body["expirationDateTime"][:26] + "+00:00")
    assert granted - datetime.now(UTC) > timedelta(minutes=44)
    path = f"/subscriptions/{short.body['id']}"
    assert (
        await graph.call("PATCH", path, json={"expirationDateTime": expiry(5000)})
    ).status == 400
    await sandbox.control.settings(subscription_max_minutes=10080)
    renewed = await graph.call("PATCH", path, json={"expirationDateTime": expiry(5000)})
    assert renewed.status == 200 and renewed.body["id"] == short.body["id"]
    assert (await graph.call("GET", path)).body["expirationDateTime"] == renewed.body[
        "expirationDateTime"
    ]
    assert (await graph.call("DELETE", path)).status == 204
    assert (await graph.call("GET", path)).status == 404


async def test_change_notifications_carry_graph_fields(
    graph: Graph, receiver: Receiver, sandbox: Any
) -> None:
    sub = (await subscribe(graph, receiver)).body
    created = (await graph.call("POST", "/me/events", json=EVENT)).body
    await graph.call("PATCH", f"/me/events/{created['id']}", json={"subject": "m"})
    await sandbox.control.delete_event("microsoft", graph.email, created["id"])
    await wait_for(lambda: len(receiver.values("/notify")) == 3)
    items = receiver.values("/notify")
    # Each notification is its own POST, as in Graph: they may arrive in any order.
    assert sorted(i["changeType"] for i in items) == ["created", "deleted", "updated"]
    first = next(i for i in items if i["changeType"] == "created")
    assert set(first) == {
        "subscriptionId",
        "subscriptionExpirationDateTime",
        "changeType",
        "resource",
        "resourceData",
        "clientState",
        "tenantId",
    }
    assert first["subscriptionId"] == sub["id"] and first["clientState"] == "s3cret"
    assert first["resource"].endswith(f"/Events/{created['id']}") and first["resource"].startswith(
        "Users/"
    )
    assert first["resourceData"]["id"] == created["id"]
    assert first["resourceData"]["@odata.type"] == "#Microsoft.Graph.Event"


async def test_change_type_and_calendar_scope_filter(
    graph: Graph, receiver: Receiver, sandbox: Any
) -> None:
    work = await sandbox.control.add_calendar("microsoft", graph.email, "Work")
    deleted_only = await subscribe(graph, receiver, changeType="deleted")
    work_only = await subscribe(
        graph, receiver, resource=f"/me/calendars/{work['id']}/events", changeType="created"
    )
    await sandbox.control.create_event("microsoft", graph.email, EVENT)
    in_work = await sandbox.control.create_event(
        "microsoft", graph.email, EVENT, calendar_id=work["id"]
    )
    await sandbox.control.delete_event("microsoft", graph.email, in_work["id"])
    await sandbox.control.drain()
    got = sorted((i["subscriptionId"], i["changeType"]) for i in receiver.values("/notify"))
    assert got == sorted([(deleted_only.body["id"], "deleted"), (work_only.body["id"], "created")])


async def test_failed_notifications_are_retried(
    graph: Graph, receiver: Receiver, sandbox: Any
) -> None:
    await sandbox.control.settings(delivery_retry_base=0.01)
    await subscribe(graph, receiver)
    receiver.fail_next = 2
    await sandbox.control.create_event("microsoft", graph.email, EVENT)
    await wait_for(lambda: len(receiver.values("/notify")) == 1)
    await sandbox.control.drain()
    outcomes = [
        d["outcome"]
        for d in await sandbox.control.deliveries("microsoft")
        if d["url"].endswith("/notify") and d["body"]
    ]
    assert outcomes == ["retrying", "retrying", "delivered"]


async def test_slow_receiver_counts_as_failure(
    graph: Graph, receiver: Receiver, sandbox: Any
) -> None:
    await sandbox.control.settings(
        notification_timeout=0.1, delivery_retry_base=0.01, delivery_max_attempts=2
    )
    await subscribe(graph, receiver)
    receiver.notify_delay = 0.3
    await sandbox.control.create_event("microsoft", graph.email, EVENT)
    await sandbox.control.drain()
    log = [d for d in await sandbox.control.deliveries("microsoft") if d["body"]]
    assert [(d["attempt"], d["outcome"], d["status"]) for d in log] == [
        (1, "retrying", None),
        (2, "failed", None),
    ]


async def test_lifecycle_events_on_demand(graph: Graph, receiver: Receiver, sandbox: Any) -> None:
    sub = (await subscribe(graph, receiver)).body
    assert (await graph.call("POST", f"/subscriptions/{sub['id']}/reauthorize")).status == 204
    for event in ("reauthorizationRequired", "missed", "subscriptionRemoved"):
        await sandbox.control.request(
            "POST",
            "microsoft/lifecycle",
            json={"subscription_id": sub["id"], "lifecycleEvent": event},
        )
    await wait_for(lambda: len(receiver.values("/lifecycle")) == 3)
    items = receiver.values("/lifecycle")
    assert sorted(i["lifecycleEvent"] for i in items) == [
        "missed",
        "reauthorizationRequired",
        "subscriptionRemoved",
    ]
    assert all(i["subscriptionId"] == sub["id"] and i["clientState"] == "s3cret" for i in items)
    assert (await graph.call("GET", f"/subscriptions/{sub['id']}")).status == 404
    await sandbox.control.create_event("microsoft", graph.email, EVENT)
    await sandbox.control.drain()
    assert receiver.values("/notify") == []


async def test_expired_subscription_sends_nothing(
    graph: Graph, receiver: Receiver, sandbox: Any
) -> None:
    await subscribe(graph, receiver)
    real_clock = sandbox.ctx.clock
    sandbox.ctx.clock = lambda: real_clock() + timedelta(hours=3)
    try:
        await sandbox.control.create_event("microsoft", graph.email, EVENT)
        await sandbox.control.drain()
    finally:
        sandbox.ctx.clock = real_clock
    assert receiver.values() == []


async def test_bulk_load_sends_one_notification(
    graph: Graph, receiver: Receiver, sandbox: Any
) -> None:
    await subscribe(graph, receiver)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    events = [
        timed(
            (start + timedelta(minutes=30 * i)).strftime("%Y-%m-%dT%H:%M:%S"),
            (start + timedelta(minutes=30 * i + 15)).strftime("%Y-%m-%dT%H:%M:%S"),
            subject=f"b{i}",
        )
        for i in range(10_000)
    ]
    assert await sandbox.control.bulk_load("microsoft", graph.email, events) == 10_000
    await sandbox.control.drain()
    assert len(receiver.values("/notify")) == 1
    assert len(await sandbox.control.list_events("microsoft", graph.email)) == 10_000
