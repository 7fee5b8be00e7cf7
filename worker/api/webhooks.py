"""Provider push receivers: /webhooks/google, /webhooks/outlook and /webhooks/outlook/lifecycle.

They authenticate (channel id + token, subscription id + clientState; secrets compared as
hashes in constant time), record a sync request or a renewal, and answer. No provider I/O
and no JWT: providers cannot send one. Unknown Google channels answer 404, a wrong token
401 (Google does not retry either); Graph always gets 202 so it never retries a forged or
stale notification, which is simply ignored and counted. A request already pending absorbs
a notification without a write, so a storm for one calendar costs one row update.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from worker import wakeups
from worker.api.errors import BadRequest, NotFound, Unauthorized
from worker.api.keys import DEPS
from worker.db import push as repo
from worker.db.links import request_sync
from worker.deps import Deps
from worker.metrics import (
    WEBHOOK_NOTIFICATIONS_COALESCED,
    WEBHOOK_NOTIFICATIONS_IGNORED,
    WEBHOOK_NOTIFICATIONS_RECEIVED,
)

routes = web.RouteTableDef()

GOOGLE_STATES = frozenset({"sync", "exists", "not_exists"})
MAX_ID_LENGTH = 256  # our ids are ≤ 64 (Google) and GUIDs (Graph); anything longer is not ours
MAX_VALIDATION_TOKEN = 4096  # Graph's tokens are ~120 characters
MAX_BATCH = 1000  # notifications per Graph POST we look at
# Recording "a message arrived" is a write; under a storm once a minute is plenty for health.
MESSAGE_RECORD_INTERVAL = timedelta(seconds=60)


def _secret_ok(secret: str | None, stored_hash: str | None) -> bool:
    """Constant-time check of a channel token / clientState against its stored SHA-256."""
    if not secret or not stored_hash:
        return False
    return hmac.compare_digest(hashlib.sha256(secret.encode()).hexdigest(), stored_hash)


def _ignored(provider: str, reason: str, n: int = 1) -> None:
    WEBHOOK_NOTIFICATIONS_IGNORED.labels(provider, reason).inc(n)


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


@routes.post("/webhooks/google")
async def google(request: web.Request) -> web.Response:
    """A Google channel message: `sync` is recorded, `exists`/`not_exists` request a sync."""
    WEBHOOK_NOTIFICATIONS_RECEIVED.labels("google").inc()
    channel_id = request.headers.get("X-Goog-Channel-ID", "")
    state = request.headers.get("X-Goog-Resource-State", "")
    if not channel_id or len(channel_id) > MAX_ID_LENGTH or state not in GOOGLE_STATES:
        _ignored("google", "malformed")
        raise BadRequest("X-Goog-Channel-ID and a known X-Goog-Resource-State are required")
    number = _int_or_none(request.headers.get("X-Goog-Message-Number"))
    deps = request.app[DEPS]
    now = deps.clock.now()
    async with deps.sessions() as session, session.begin():
        record = (await repo.find_by_push_ids(session=session, push_ids=[channel_id])).get(channel_id)
        if record is None or record.kind != repo.GOOGLE:
            _ignored("google", "unknown_channel")
            raise NotFound("unknown channel")
        if not _secret_ok(request.headers.get("X-Goog-Channel-Token"), record.secret_hash):
            _ignored("google", "bad_secret")
            raise Unauthorized("channel token does not match")
        interval = deps.settings.push.min_sync_interval_seconds
        requested = await _google_message(session, record, state, now, number, interval)
    if requested:
        await wakeups.wake(deps.redis, deps.prefix, wakeups.SYNC)
    return web.Response(status=200)


async def _google_message(
    session: AsyncSession, record: repo.PushRecord, state: str, now: datetime, number: int | None, interval: float
) -> bool:
    """Record the message; True if workers should wake for a new sync request."""
    if state == "sync":
        _ignored("google", "sync_message")
        await repo.record_message(session=session, link_ids=[record.link_id], now=now, number=number)
        return False
    return await _request(session, [record], now, "google", interval=interval, number=number)


async def _request(
    session: AsyncSession,
    records: Sequence[repo.PushRecord],
    now: datetime,
    provider: str,
    *,
    interval: float,
    number: int | None = None,
) -> bool:
    """Request syncs for links not already pending; hold storms back; True if workers should wake.

    A request recorded while the link syncs is served after that sync, by the sweep's own
    tick; waking workers then would only start the next sync at once, and a storm would
    become one sync after another.
    """
    read = [r for r in records if r.read]
    if len(read) < len(records):
        _ignored(provider, "not_read", len(records) - len(read))
    fresh = [r for r in read if not r.sync_pending]
    if len(fresh) < len(read):
        WEBHOOK_NOTIFICATIONS_COALESCED.labels(provider).inc(len(read) - len(fresh))
    noted = [r.link_id for r in read if not r.sync_pending or _note_due(r, now)]
    if noted:
        await repo.record_message(session=session, link_ids=noted, now=now, number=number)
    if fresh:
        await request_sync(session=session, now=now, link_ids=[r.link_id for r in fresh])
    held = [r.link_id for r in read if _needs_hold(r, now, interval)]
    if held:
        await repo.hold(session=session, link_ids=held, interval_seconds=interval)
    return any(not r.syncing(now) for r in fresh)


def _needs_hold(record: repo.PushRecord, now: datetime, interval: float) -> bool:
    """Synced less than `interval` ago, idle, and not yet held: the next sync waits its turn."""
    last = record.last_synced_at
    if last is None or record.interactive or record.syncing(now) or now - last >= timedelta(seconds=interval):
        return False
    return record.next_attempt_at is None or record.next_attempt_at < last + timedelta(seconds=interval)


def _note_due(record: repo.PushRecord, now: datetime) -> bool:
    last = record.last_message_at
    return record.awaiting_first_message or last is None or now - last >= MESSAGE_RECORD_INTERVAL


@routes.post("/webhooks/outlook")
async def outlook(request: web.Request) -> web.Response:
    """Graph change notifications (or the validation handshake): each authentic one requests a sync."""
    if "validationToken" in request.query:
        return _echo(request)
    return await _graph(request)


@routes.post("/webhooks/outlook/lifecycle")
async def outlook_lifecycle(request: web.Request) -> web.Response:
    """Graph lifecycle notifications (or the validation handshake): renew, recreate or resync."""
    if "validationToken" in request.query:
        return _echo(request)
    return await _graph(request)


def _echo(request: web.Request) -> web.Response:
    """Graph's validation: the URL-decoded token back as text/plain, at once, unauthenticated."""
    token = request.query["validationToken"]
    if not token or len(token) > MAX_VALIDATION_TOKEN:
        raise BadRequest("validationToken must be 1 to 4096 characters")
    return web.Response(text=token, content_type="text/plain", headers={"X-Content-Type-Options": "nosniff"})


@dataclass(frozen=True, slots=True)
class GraphItem:
    """The fields of one change or lifecycle notification that we use."""

    subscription_id: str
    client_state: str | None
    lifecycle_event: str | None


async def _graph(request: web.Request) -> web.Response:
    """Authenticate a batch of Graph notifications, then act on them in one transaction."""
    items = await _graph_items(request)
    if not items:
        return web.Response(status=202)
    deps = request.app[DEPS]
    async with deps.sessions() as session, session.begin():
        found = await repo.find_by_push_ids(session=session, push_ids=list({i.subscription_id for i in items}))
        authentic = _authentic(items, found)
        changes = [r for item, r in authentic if item.lifecycle_event is None]
        interval = deps.settings.push.min_sync_interval_seconds
        now = deps.clock.now()
        requested = await _request(session, _unique(changes), now, "outlook", interval=interval) if changes else False
        requested |= await _lifecycle(deps, session, [(i, r) for i, r in authentic if i.lifecycle_event])
    if requested:
        await wakeups.wake(deps.redis, deps.prefix, wakeups.SYNC)
    return web.Response(status=202)


async def _graph_items(request: web.Request) -> list[GraphItem]:
    """Parse `{"value": [...]}`; a malformed body is a 400, a malformed item is skipped."""
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("body must be JSON") from exc
    values = body.get("value") if isinstance(body, dict) else None
    if not isinstance(values, list) or len(values) > MAX_BATCH:
        raise BadRequest(f'body must be {{"value": [...]}} with at most {MAX_BATCH} notifications')
    WEBHOOK_NOTIFICATIONS_RECEIVED.labels("outlook").inc(len(values))
    items = [_graph_item(v) for v in values]
    if None in items:
        _ignored("outlook", "malformed", items.count(None))
    return [i for i in items if i is not None]


def _graph_item(raw: Any) -> GraphItem | None:
    if not isinstance(raw, dict):
        return None
    sub_id, state, event = raw.get("subscriptionId"), raw.get("clientState"), raw.get("lifecycleEvent")
    if not isinstance(sub_id, str) or not sub_id or len(sub_id) > MAX_ID_LENGTH:
        return None
    if not isinstance(state, str | None) or not isinstance(event, str | None):
        return None
    return GraphItem(sub_id, state, event)


def _authentic(items: list[GraphItem], found: dict[str, repo.PushRecord]) -> list[tuple[GraphItem, repo.PushRecord]]:
    """Items whose subscription is ours and whose clientState matches; the rest are counted."""
    out = []
    for item in items:
        record = found.get(item.subscription_id)
        if record is None or record.kind != repo.GRAPH:
            _ignored("outlook", "unknown_subscription")
        elif not _secret_ok(item.client_state, record.secret_hash):
            _ignored("outlook", "bad_secret")
        else:
            out.append((item, record))
    return out


def _unique(records: list[repo.PushRecord]) -> list[repo.PushRecord]:
    """One record per link (a batch often names the same subscription many times)."""
    by_link = {r.link_id: r for r in records}
    if len(by_link) < len(records):
        WEBHOOK_NOTIFICATIONS_COALESCED.labels("outlook").inc(len(records) - len(by_link))
    return list(by_link.values())


async def _lifecycle(deps: Deps, session: AsyncSession, pairs: list[tuple[GraphItem, repo.PushRecord]]) -> bool:
    """reauthorizationRequired → renew now (by the push job); subscriptionRemoved → forget it,
    create again and catch up; missed → full resync. True if a sync request was written."""
    now = deps.clock.now()
    by_event: dict[str, list[int]] = {}
    for item, record in pairs:
        by_event.setdefault(item.lifecycle_event or "", []).append(record.link_id)
    for event in set(by_event) - {"reauthorizationRequired", "subscriptionRemoved", "missed"}:
        _ignored("outlook", "unknown_lifecycle_event", len(by_event[event]))
    if renew := by_event.get("reauthorizationRequired"):
        await repo.schedule_now(session=session, link_ids=renew, now=now)
    if removed := by_event.get("subscriptionRemoved"):
        await repo.clear(session=session, link_ids=removed, renew_at=now, error="push: Graph removed the subscription")
        await request_sync(session=session, now=now, link_ids=removed)
    if missed := by_event.get("missed"):
        await request_sync(session=session, now=now, link_ids=missed, full=True)
    return bool(removed or missed)
