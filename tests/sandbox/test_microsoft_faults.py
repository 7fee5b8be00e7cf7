"""Fault knobs on the Microsoft half through the shared control surface, with Graph's error bodies."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.sandbox.test_microsoft_support import WINDOW, Graph, Receiver, new_graph, timed, wait_for

EVENT = timed("2026-12-01T09:00:00", "2026-12-01T10:00:00", subject="f")


@pytest.fixture
async def graph(sandbox: Any) -> AsyncIterator[Graph]:
    """A Graph caller for a fresh mailbox."""
    caller = await new_graph(sandbox)
    yield caller
    await caller.close()


@pytest.fixture
async def receiver(graph: Graph) -> AsyncIterator[Receiver]:
    """A webhook receiver subscribed to the mailbox's events."""
    hook = await Receiver().start()
    expires = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": f"{hook.url}/notify",
        "resource": "/me/events",
        "expirationDateTime": expires,
        "clientState": "c",
    }
    assert (await graph.call("POST", "/subscriptions", json=body)).status == 201
    yield hook
    await hook.stop()


@pytest.mark.parametrize(
    ("status", "code"),
    [(429, "ApplicationThrottled"), (503, "ServiceUnavailable"), (504, "GatewayTimeout")],
)
async def test_injected_errors_use_graph_bodies(graph: Graph, sandbox: Any, status: int, code: str) -> None:
    await sandbox.control.add_fault(
        provider="microsoft", path="/calendarView$", status=status, retry_after=1.5, count=1
    )
    failed = await graph.call("GET", "/me/calendarView", params=WINDOW)
    assert failed.status == status and failed.headers["Retry-After"] == "1.5"
    assert failed.body["error"]["code"] == code
    assert set(failed.body["error"]["innerError"]) == {"date", "request-id", "client-request-id"}
    assert (await graph.call("GET", "/me/calendarView", params=WINDOW)).status == 200


async def test_fraction_is_seeded_and_method_scoped(graph: Graph, sandbox: Any) -> None:
    await sandbox.control.add_fault(provider="microsoft", method="GET", path="/me$", status=503, fraction=0.5, seed=7)
    statuses = [(await graph.call("GET", "/me")).status for _ in range(20)]
    assert 0 < statuses.count(503) < 20 and set(statuses) == {200, 503}
    assert (await graph.call("POST", "/me/events", json=EVENT)).status == 201


async def test_connection_reset(graph: Graph, sandbox: Any) -> None:
    # A POST, because aiohttp silently retries an idempotent request on a reused connection.
    await sandbox.control.add_fault(provider="microsoft", path="/me/events$", reset=True, count=1)
    with pytest.raises(aiohttp.ClientError):
        await graph.call("POST", "/me/events", json=EVENT)
    assert (await graph.call("POST", "/me/events", json=EVENT)).status == 201
    log = await sandbox.control.requests("microsoft")
    assert [e["status"] for e in log if e["path"] == "/v1.0/me/events"] == ["reset", 201]


async def test_response_lost_after_commit_then_transaction_id_retry(graph: Graph, sandbox: Any) -> None:
    await sandbox.control.add_fault(
        provider="microsoft",
        method="POST",
        path="/me/events$",
        status=500,
        after_commit=True,
        count=1,
    )
    body = {**EVENT, "transactionId": "retry-me"}
    lost = await graph.call("POST", "/me/events", json=body)
    assert lost.status == 500 and lost.body["error"]["code"] == "InternalServerError"
    retried = await graph.call("POST", "/me/events", json=body)
    assert retried.status == 201
    events = await sandbox.control.list_events("microsoft", graph.email)
    assert [e["id"] for e in events] == [retried.body["id"]]


async def test_latency(graph: Graph, sandbox: Any) -> None:
    await sandbox.control.add_fault(provider="microsoft", path="/me$", latency_ms=150, count=1)
    began = time.perf_counter()
    assert (await graph.call("GET", "/me")).status == 200
    assert time.perf_counter() - began >= 0.15


async def test_token_endpoint_faults_use_aad_bodies(sandbox: Any) -> None:
    await sandbox.control.add_fault(provider="microsoft", path="/oauth2/v2.0/token$", status=503, count=1)
    async with aiohttp.ClientSession() as http:
        url = f"{sandbox.ms_authority}/common/oauth2/v2.0/token"
        async with http.post(url, data={"grant_type": "refresh_token"}) as resp:
            body = await resp.json()
    assert resp.status == 503 and body["error"] == "temporarily_unavailable"
    assert body["error_codes"] and body["error_description"].startswith("AADSTS")


async def test_dropped_and_duplicated_notifications(graph: Graph, receiver: Receiver, sandbox: Any) -> None:
    await sandbox.control.delivery("microsoft", drop=1)
    await sandbox.control.create_event("microsoft", graph.email, EVENT)
    await sandbox.control.drain()
    assert receiver.values() == []
    assert [d["outcome"] for d in await sandbox.control.deliveries("microsoft") if d["body"]][-1] == "dropped"
    await sandbox.control.delivery("microsoft", duplicate=1)
    await sandbox.control.create_event("microsoft", graph.email, EVENT)
    await wait_for(lambda: len(receiver.values()) == 2)
    first, second = receiver.values()
    assert first == second


async def test_delayed_notifications(graph: Graph, receiver: Receiver, sandbox: Any) -> None:
    await sandbox.control.delivery("microsoft", delay_ms=300)
    began = time.perf_counter()
    await sandbox.control.create_event("microsoft", graph.email, EVENT)
    assert receiver.values() == []
    await wait_for(lambda: len(receiver.values()) == 1)
    assert time.perf_counter() - began >= 0.3


async def test_unknown_and_missing_tokens_are_401(sandbox: Any) -> None:
    graph = Graph(sandbox.graph_api, "not-a-token", "nobody@contoso.test")
    try:
        reply = await graph.call("GET", "/me/events")
        assert reply.status == 401 and reply.body["error"]["code"] == "InvalidAuthenticationToken"
        async with graph.session.get(f"{sandbox.graph_api}/me") as resp:
            body = await resp.json()
        assert resp.status == 401 and body["error"]["message"] == "Access token is empty."
    finally:
        await graph.close()
