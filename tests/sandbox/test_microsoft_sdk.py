"""Fidelity: the official msgraph-sdk, pointed at the sandbox with a static token, does a round.

If the sandbox's paths, status codes or JSON shapes drifted from Graph's, the SDK's
generated request builders and parsers would fail here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from kiota_abstractions.authentication import AuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.event import Event
from msgraph.generated.models.subscription import Subscription
from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import (
    DeltaRequestBuilder,
)

from tests.sandbox.test_microsoft_support import wait_for


class StaticToken(AuthenticationProvider):
    """Adds a fixed bearer token, as a client holding a cached access token would."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def authenticate_request(
        self,
        request: RequestInformation,
        additional_authentication_context: dict[str, Any] | None = None,
    ) -> None:
        request.headers.add("Authorization", f"Bearer {self.token}")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A notification endpoint that answers Graph's validation and records notifications."""
    received: list[dict[str, Any]] = []

    async def notify(request: web.Request) -> web.Response:
        if "validationToken" in request.query:
            return web.Response(text=request.query["validationToken"], content_type="text/plain")
        received.append(await request.json())
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/notify", notify)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/notify", received
    await runner.cleanup()


@pytest.fixture
async def client(sandbox: Any) -> tuple[GraphServiceClient, str]:
    """A GraphServiceClient for a fresh user, and that user's email."""
    email = f"sdk-{uuid.uuid4().hex[:8]}@contoso.test"
    await sandbox.control.create_user("microsoft", email)
    tokens = await sandbox.control.issue_tokens("microsoft", email)
    adapter = GraphRequestAdapter(StaticToken(tokens["access_token"]))
    adapter.base_url = sandbox.graph_api
    return GraphServiceClient(request_adapter=adapter), email


def _event_body(subject: str) -> dict[str, Any]:
    when = {"dateTime": "2026-12-01T09:00:00", "timeZone": "UTC"}
    return {"subject": subject, "start": when, "end": {**when, "dateTime": "2026-12-01T10:00:00"}}


def _dtz(moment: datetime) -> DateTimeTimeZone:
    return DateTimeTimeZone(date_time=moment.strftime("%Y-%m-%dT%H:%M:%S"), time_zone="UTC")


async def test_sdk_reads_me_and_calendars(client: tuple[GraphServiceClient, str]) -> None:
    graph, email = client
    me = await graph.me.get()
    assert me is not None and me.mail == email and me.user_principal_name == email
    calendars = await graph.me.calendars.get()
    assert calendars is not None and calendars.value is not None
    assert [c.name for c in calendars.value] == ["Calendar"]
    assert calendars.value[0].is_default_calendar is True


async def test_sdk_event_crud_and_calendar_view(
    client: tuple[GraphServiceClient, str], sandbox: Any
) -> None:
    graph, email = client
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    body = Event(subject="SDK standup", start=_dtz(start), end=_dtz(start + timedelta(hours=1)))
    body.transaction_id = "sdk-txn-1"
    created = await graph.me.events.post(body)
    assert created is not None and created.id and created.change_key
    assert created.transaction_id == "sdk-txn-1"
    again = await graph.me.events.post(body)
    assert again is not None and again.id == created.id  # idempotent create

    config = RequestConfiguration(
        query_parameters=graph.me.calendar_view.CalendarViewRequestBuilderGetQueryParameters(
            start_date_time="2026-11-30T00:00:00Z", end_date_time="2026-12-02T00:00:00Z"
        )
    )
    view = await graph.me.calendar_view.get(request_configuration=config)
    assert view is not None and [e.subject for e in view.value or []] == ["SDK standup"]

    patched = await graph.me.events.by_event_id(created.id).patch(Event(subject="Moved"))
    assert patched is not None and patched.subject == "Moved"
    assert patched.change_key != created.change_key
    await graph.me.events.by_event_id(created.id).delete()
    assert await sandbox.control.list_events("microsoft", email) == []


async def test_sdk_pages_delta_to_a_delta_link_and_replays_it(
    client: tuple[GraphServiceClient, str], sandbox: Any
) -> None:
    graph, email = client
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    events = [
        {
            "subject": f"e{i}",
            "start": {"dateTime": (start + timedelta(hours=i)).isoformat()[:19], "timeZone": "UTC"},
            "end": {
                "dateTime": (start + timedelta(hours=i, minutes=30)).isoformat()[:19],
                "timeZone": "UTC",
            },
        }
        for i in range(5)
    ]
    assert await sandbox.control.bulk_load("microsoft", email, events) == 5
    params = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
        start_date_time="2026-11-30T00:00:00Z", end_date_time="2026-12-31T00:00:00Z"
    )
    config = RequestConfiguration(query_parameters=params)
    config.headers.add("Prefer", "odata.maxpagesize=2")
    page = await graph.me.calendar_view.delta.get(request_configuration=config)
    seen: list[str] = []
    pages = 0
    while page is not None:
        pages += 1
        seen += [e.subject or "" for e in page.value or []]
        if page.odata_delta_link:
            break
        assert page.odata_next_link
        page = await graph.me.calendar_view.delta.with_url(page.odata_next_link).get()
    assert page is not None and page.odata_delta_link
    assert sorted(seen) == [f"e{i}" for i in range(5)] and pages == 3

    listed = await sandbox.control.list_events("microsoft", email)
    await sandbox.control.patch_event("microsoft", email, listed[0]["id"], {"subject": "changed"})
    replay = await graph.me.calendar_view.delta.with_url(page.odata_delta_link).get()
    assert replay is not None
    assert [e.subject for e in replay.value or []] == ["changed"]
    assert replay.odata_delta_link


async def test_sdk_creates_renews_and_deletes_a_subscription(
    client: tuple[GraphServiceClient, str],
    receiver: tuple[str, list[dict[str, Any]]],
    sandbox: Any,
) -> None:
    graph, email = client
    url, received = receiver
    expiry = datetime.now(UTC) + timedelta(hours=2)
    sub = await graph.subscriptions.post(
        Subscription(
            change_type="created,updated,deleted",
            notification_url=url,
            resource="/me/events",
            expiration_date_time=expiry,
            client_state="sdk-secret",
        )
    )
    assert sub is not None and sub.id and sub.expiration_date_time is not None
    assert abs((sub.expiration_date_time - expiry).total_seconds()) < 1

    later = datetime.now(UTC) + timedelta(hours=20)
    renewed = await graph.subscriptions.by_subscription_id(sub.id).patch(
        Subscription(expiration_date_time=later)
    )
    assert renewed is not None and renewed.expiration_date_time is not None
    assert abs((renewed.expiration_date_time - later).total_seconds()) < 1

    listed = await graph.subscriptions.get()
    assert listed is not None and [s.id for s in listed.value or []] == [sub.id]
    await sandbox.control.create_event("microsoft", email, _event_body("notified"))
    await wait_for(lambda: bool(received))
    (item,) = received[0]["value"]
    assert item["subscriptionId"] == sub.id and item["clientState"] == "sdk-secret"
    await graph.subscriptions.by_subscription_id(sub.id).delete()
    listed = await graph.subscriptions.get()
    assert listed is not None and listed.value == []
