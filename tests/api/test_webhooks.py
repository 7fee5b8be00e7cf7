"""The webhook receivers over HTTP: authentication, recording, coalescing, validation echo, bad input.

Links get their push columns straight from the repository (a known secret), so these tests
need no provider; tests/jobs/test_push_*.py cover the same routes driven by the sandbox.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from jobs.push import secret_hash
from tests.conftest import Api
from tests.factories import make_connection, make_link, make_resource
from worker.db import push as repo
from worker.db.tables import CalendarLink
from worker.metrics import REGISTRY
from worker.wakeups import channel

SECRET = "s3cret-token-for-tests"


@dataclass
class Hooked:
    link_id: int
    push_id: str


async def _link(api: Api, kind: str, *, read: bool = True, push_id: str | None = None) -> Hooked:
    deps = api.deps
    resource = await make_resource(deps.sessions)
    provider = "google" if kind == repo.GOOGLE else "outlook"
    connection = await make_connection(deps.sessions, resource=resource, provider=provider, status="active")
    link = await make_link(deps.sessions, connection=connection, read=read)
    push_id = push_id or f"calsync-{link.id}-test"
    async with deps.sessions() as session, session.begin():
        if kind == repo.GOOGLE:
            await repo.begin_channel(session=session, link_id=link.id, push_id=push_id, secret_hash=secret_hash(SECRET))
        else:
            now = deps.clock.now()
            await repo.save_subscription(
                session=session,
                link_id=link.id,
                push_id=push_id,
                expires_at=now,
                renew_at=now,
                secret_hash=secret_hash(SECRET),
            )
    return Hooked(link.id, push_id)


async def _row(api: Api, link_id: int) -> CalendarLink:
    async with api.deps.sessions() as session:
        return (await session.execute(select(CalendarLink).where(CalendarLink.id == link_id))).scalar_one()


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _goog(hooked: Hooked, state: str = "exists", *, token: str | None = SECRET, number: str = "2") -> dict[str, str]:
    headers = {
        "X-Goog-Channel-ID": hooked.push_id,
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": number,
        "X-Goog-Resource-ID": "res-1",
        "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/primary/events?alt=json",
    }
    if token is not None:
        headers["X-Goog-Channel-Token"] = token
    return headers


async def _post_google(api: Api, headers: dict[str, str]) -> int:
    async with api.session.post(api.url + "/webhooks/google", headers=headers) as resp:
        return resp.status


# --- Google -------------------------------------------------------------------------------


async def test_google_sync_message_is_recorded_and_requests_nothing(api: Api) -> None:
    hooked = await _link(api, repo.GOOGLE)
    assert (await _row(api, hooked.link_id)).push_error == repo.AWAITING_FIRST_MESSAGE

    assert await _post_google(api, _goog(hooked, "sync", number="1")) == 200

    row = await _row(api, hooked.link_id)
    assert row.push_last_message_at is not None and row.push_last_message_number == 1
    assert row.push_error is None  # the channel is proven
    assert row.sync_requested_at is None


@pytest.mark.parametrize("state", ["exists", "not_exists"])
async def test_google_change_requests_a_sync_and_wakes_workers(api: Api, state: str) -> None:
    hooked = await _link(api, repo.GOOGLE)
    pubsub = api.deps.redis.pubsub()
    await pubsub.subscribe(channel(api.deps.prefix, "sync"))
    await pubsub.get_message(timeout=1.0)  # the subscribe confirmation

    assert await _post_google(api, _goog(hooked, state)) == 200

    assert (await _row(api, hooked.link_id)).sync_requested_at is not None
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2.0)
    assert message is not None and message["type"] == "message"
    await pubsub.aclose()


async def test_google_unknown_channel_is_404_and_counted(api: Api) -> None:
    before = _count("calsync_webhook_notifications_ignored_total", provider="google", reason="unknown_channel")

    assert await _post_google(api, _goog(Hooked(0, "calsync-nobody"))) == 404

    after = _count("calsync_webhook_notifications_ignored_total", provider="google", reason="unknown_channel")
    assert after == before + 1


@pytest.mark.parametrize("token", ["wrong", "", None, SECRET + "x", SECRET.upper()])
async def test_google_wrong_or_missing_token_is_401_and_requests_nothing(api: Api, token: str | None) -> None:
    hooked = await _link(api, repo.GOOGLE)
    before = _count("calsync_webhook_notifications_ignored_total", provider="google", reason="bad_secret")

    assert await _post_google(api, _goog(hooked, token=token)) == 401

    row = await _row(api, hooked.link_id)
    assert row.sync_requested_at is None and row.push_last_message_at is None
    assert _count("calsync_webhook_notifications_ignored_total", provider="google", reason="bad_secret") == before + 1


async def test_google_token_of_another_channel_is_rejected(api: Api) -> None:
    mine = await _link(api, repo.GOOGLE)
    other = await _link(api, repo.GOOGLE)
    async with api.deps.sessions() as session, session.begin():
        await repo.begin_channel(
            session=session, link_id=other.link_id, push_id=other.push_id, secret_hash=secret_hash("other")
        )

    assert await _post_google(api, _goog(mine, token="other")) == 401
    assert (await _row(api, mine.link_id)).sync_requested_at is None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Goog-Resource-State": "exists"},
        {"X-Goog-Channel-ID": "calsync-1-x"},
        {"X-Goog-Channel-ID": "calsync-1-x", "X-Goog-Resource-State": "bogus"},
        {"X-Goog-Channel-ID": "c" * 300, "X-Goog-Resource-State": "exists"},
    ],
)
async def test_google_malformed_headers_are_400(api: Api, headers: dict[str, str]) -> None:
    async with api.session.post(api.url + "/webhooks/google", headers=headers, data=b"junk\x00\xff") as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "bad_request"


async def test_google_odd_and_out_of_order_message_numbers_are_fine(api: Api) -> None:
    hooked = await _link(api, repo.GOOGLE)

    for number in ["7", "3", "not-a-number", "", "99999999999999999999999"]:
        assert await _post_google(api, _goog(hooked, number=number)) == 200

    row = await _row(api, hooked.link_id)
    assert row.sync_requested_at is not None and row.push_last_message_number == 7


async def test_google_message_for_a_deselected_link_requests_nothing(api: Api) -> None:
    hooked = await _link(api, repo.GOOGLE, read=False)

    assert await _post_google(api, _goog(hooked)) == 200

    assert (await _row(api, hooked.link_id)).sync_requested_at is None


async def test_google_storm_of_1000_messages_is_one_pending_request(api: Api) -> None:
    hooked = await _link(api, repo.GOOGLE)
    assert await _post_google(api, _goog(hooked, number="1")) == 200
    first = (await _row(api, hooked.link_id)).sync_requested_at
    before = _count("calsync_webhook_notifications_coalesced_total", provider="google")

    statuses = await asyncio.gather(*(_post_google(api, _goog(hooked, number=str(n))) for n in range(2, 1001)))

    assert statuses == [200] * 999
    row = await _row(api, hooked.link_id)
    assert row.sync_requested_at == first  # still the one request, from the first message
    assert _count("calsync_webhook_notifications_coalesced_total", provider="google") == before + 999


# --- Outlook ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/webhooks/outlook", "/webhooks/outlook/lifecycle"])
@pytest.mark.parametrize(
    "token",
    [
        "Validation: Testing client application reachability for subscription Request-Id: 9b2e-41",
        "a+b&c=d%20e/f?g#h",
        "ünïcødé ✓",
    ],
)
async def test_outlook_validation_echoes_the_decoded_token(api: Api, path: str, token: str) -> None:
    async with api.session.post(
        api.url + path, params={"validationToken": token}, headers={"Content-Type": "text/plain; charset=utf-8"}
    ) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        assert await resp.text() == token


@pytest.mark.parametrize("token", ["", "x" * 5000])
async def test_outlook_validation_token_out_of_bounds_is_400(api: Api, token: str) -> None:
    async with api.session.post(api.url + "/webhooks/outlook", params={"validationToken": token}) as resp:
        assert resp.status == 400


def _note(hooked: Hooked, client_state: str | None = SECRET, **extra: Any) -> dict[str, Any]:
    return {
        "subscriptionId": hooked.push_id,
        "subscriptionExpirationDateTime": "2030-01-01T00:00:00.0000000+00:00",
        "changeType": "updated",
        "clientState": client_state,
        "resource": "Users/u/Events/e",
        "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "id": "e"},
        "tenantId": "t",
    } | extra


async def _post_graph(api: Api, body: Any, path: str = "/webhooks/outlook") -> int:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with api.session.post(api.url + path, data=data, headers={"Content-Type": "application/json"}) as resp:
        return resp.status


async def test_outlook_notification_requests_a_sync(api: Api) -> None:
    hooked = await _link(api, repo.GRAPH)

    assert await _post_graph(api, {"value": [_note(hooked)]}) == 202

    row = await _row(api, hooked.link_id)
    assert row.sync_requested_at is not None and row.push_last_message_at is not None


async def test_outlook_batch_of_1000_for_one_subscription_is_one_request(api: Api) -> None:
    hooked = await _link(api, repo.GRAPH)
    other = await _link(api, repo.GRAPH)
    before = _count("calsync_webhook_notifications_coalesced_total", provider="outlook")

    assert await _post_graph(api, {"value": [_note(hooked)] * 999 + [_note(other)]}) == 202

    assert (await _row(api, hooked.link_id)).sync_requested_at is not None
    assert (await _row(api, other.link_id)).sync_requested_at is not None
    assert _count("calsync_webhook_notifications_coalesced_total", provider="outlook") == before + 998


@pytest.mark.parametrize("client_state", ["forged", None, ""])
async def test_outlook_wrong_client_state_is_ignored_and_counted(api: Api, client_state: str | None) -> None:
    hooked = await _link(api, repo.GRAPH)
    before = _count("calsync_webhook_notifications_ignored_total", provider="outlook", reason="bad_secret")

    assert await _post_graph(api, {"value": [_note(hooked, client_state)]}) == 202

    assert (await _row(api, hooked.link_id)).sync_requested_at is None
    assert _count("calsync_webhook_notifications_ignored_total", provider="outlook", reason="bad_secret") == before + 1


async def test_outlook_unknown_subscription_is_ignored(api: Api) -> None:
    before = _count("calsync_webhook_notifications_ignored_total", provider="outlook", reason="unknown_subscription")

    assert await _post_graph(api, {"value": [_note(Hooked(0, "no-such-subscription"))]}) == 202

    after = _count("calsync_webhook_notifications_ignored_total", provider="outlook", reason="unknown_subscription")
    assert after == before + 1


async def test_outlook_google_channel_ids_are_not_subscriptions(api: Api) -> None:
    hooked = await _link(api, repo.GOOGLE)

    assert await _post_graph(api, {"value": [_note(hooked)]}) == 202

    assert (await _row(api, hooked.link_id)).sync_requested_at is None


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"\xff\xfe", b"[]", b'{"value": {}}', b'{"value": "x"}', b"{}", b"null"],
)
async def test_outlook_malformed_body_is_400(api: Api, body: bytes) -> None:
    assert await _post_graph(api, body) == 400
    assert await _post_graph(api, body, "/webhooks/outlook/lifecycle") == 400


async def test_outlook_malformed_items_are_skipped(api: Api) -> None:
    hooked = await _link(api, repo.GRAPH)
    items = [1, "x", None, {"subscriptionId": 5}, {"subscriptionId": hooked.push_id, "clientState": 7}, _note(hooked)]

    assert await _post_graph(api, {"value": items}) == 202

    assert (await _row(api, hooked.link_id)).sync_requested_at is not None


async def test_outlook_too_many_items_is_400(api: Api) -> None:
    assert await _post_graph(api, {"value": [{}] * 1001}) == 400


# --- Outlook lifecycle --------------------------------------------------------------------


def _life(hooked: Hooked, event: str, client_state: str | None = SECRET) -> dict[str, Any]:
    return {"value": [{"subscriptionId": hooked.push_id, "clientState": client_state, "lifecycleEvent": event}]}


async def test_lifecycle_reauthorization_required_schedules_renewal_now(api: Api) -> None:
    hooked = await _link(api, repo.GRAPH)
    async with api.deps.sessions() as session, session.begin():
        await session.execute(
            update(CalendarLink)
            .where(CalendarLink.id == hooked.link_id)
            .values(push_renew_at=api.deps.clock.now().replace(year=2099))
        )

    assert await _post_graph(api, _life(hooked, "reauthorizationRequired"), "/webhooks/outlook/lifecycle") == 202

    row = await _row(api, hooked.link_id)
    assert row.push_renew_at is not None and row.push_renew_at.year < 2099
    assert row.push_id == hooked.push_id and row.sync_requested_at is None


async def test_lifecycle_subscription_removed_forgets_it_and_requests_a_sync(api: Api) -> None:
    hooked = await _link(api, repo.GRAPH)

    assert await _post_graph(api, _life(hooked, "subscriptionRemoved"), "/webhooks/outlook/lifecycle") == 202

    row = await _row(api, hooked.link_id)
    assert row.push_id is None and row.push_secret_hash is None and row.push_error
    assert row.sync_requested_at is not None and not row.full_sync_requested


async def test_lifecycle_missed_requests_a_full_sync(api: Api) -> None:
    hooked = await _link(api, repo.GRAPH)

    assert await _post_graph(api, _life(hooked, "missed"), "/webhooks/outlook/lifecycle") == 202

    row = await _row(api, hooked.link_id)
    assert row.sync_requested_at is not None and row.full_sync_requested


async def test_lifecycle_with_wrong_client_state_does_nothing(api: Api) -> None:
    hooked = await _link(api, repo.GRAPH)

    for event in ["subscriptionRemoved", "missed", "reauthorizationRequired", "somethingNew"]:
        assert await _post_graph(api, _life(hooked, event, "forged"), "/webhooks/outlook/lifecycle") == 202

    row = await _row(api, hooked.link_id)
    assert row.push_id == hooked.push_id and row.sync_requested_at is None


async def test_lifecycle_unknown_event_is_ignored(api: Api) -> None:
    hooked = await _link(api, repo.GRAPH)

    assert await _post_graph(api, _life(hooked, "somethingNew"), "/webhooks/outlook/lifecycle") == 202

    row = await _row(api, hooked.link_id)
    assert row.push_id == hooked.push_id and row.sync_requested_at is None


# --- wake-ups ----------------------------------------------------------------------------


async def _wakes(api: Api, post: Any) -> int:
    """How many sync wake-ups `post()` publishes."""
    pubsub = api.deps.redis.pubsub()
    await pubsub.subscribe(channel(api.deps.prefix, "sync"))
    await pubsub.get_message(timeout=1.0)
    await post()
    count = 0
    while await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.3):
        count += 1
    await pubsub.aclose()
    return count


async def test_message_after_a_quiet_spell_wakes_workers(api: Api) -> None:
    hooked = await _link(api, repo.GOOGLE)
    await _set(api, hooked.link_id, last_synced_at=api.deps.clock.now() - timedelta(minutes=5))

    assert await _wakes(api, lambda: _post_google(api, _goog(hooked))) == 1

    row = await _row(api, hooked.link_id)
    assert row.sync_requested_at is not None and row.next_attempt_at is None


async def test_message_during_a_sync_records_but_does_not_wake(api: Api) -> None:
    hooked = await _link(api, repo.GOOGLE)
    now = api.deps.clock.now()
    await _set(api, hooked.link_id, lease_owner="w", lease_expires_at=now + timedelta(seconds=60), last_synced_at=now)

    assert await _wakes(api, lambda: _post_google(api, _goog(hooked))) == 0

    row = await _row(api, hooked.link_id)
    assert row.sync_requested_at is not None  # served after the running sync, by the sweep's tick


async def test_pending_request_absorbs_messages_without_writes_or_wakes(api: Api) -> None:
    hooked = await _link(api, repo.GRAPH)
    now = api.deps.clock.now()
    await _set(api, hooked.link_id, sync_requested_at=now, push_last_message_at=now)

    assert await _wakes(api, lambda: _post_graph(api, {"value": [_note(hooked)]})) == 0

    row = await _row(api, hooked.link_id)
    assert row.sync_requested_at == now and row.push_last_message_at == now  # nothing written


async def test_interactive_request_stays_interactive(api: Api) -> None:
    hooked = await _link(api, repo.GOOGLE)
    now = api.deps.clock.now()
    await _set(api, hooked.link_id, sync_requested_at=now, sync_interactive=True, next_attempt_at=now)

    assert await _post_google(api, _goog(hooked)) == 200

    row = await _row(api, hooked.link_id)
    assert row.sync_interactive and row.next_attempt_at == now and row.sync_requested_at == now


async def _set(api: Api, link_id: int, **values: Any) -> None:
    async with api.deps.sessions() as session, session.begin():
        await session.execute(update(CalendarLink).where(CalendarLink.id == link_id).values(**values))
