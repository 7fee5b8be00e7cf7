"""Provider push receivers: /webhooks/google, /webhooks/outlook and /webhooks/outlook/lifecycle.

They authenticate (channel id + token, subscription id + clientState; secrets compared as
hashes in constant time), record a sync request or a renewal, and answer. No provider I/O
and no JWT: providers cannot send one. Unknown Google channels answer 404, a wrong token
401 (Google does not retry either); Graph always gets 202 so it never retries a forged or
stale notification, which is simply ignored and counted.

Fast path: a channel's owner and secret hash never change for its id, so they are cached per
app; changes are recorded by `push_recorder` (one SQL statement per batch of concurrent
messages; a link whose request is already pending costs no write).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from worker import wakeups
from worker.api.errors import BadRequest, NotFound, Unauthorized
from worker.api.keys import DEPS
from worker.api.push_recorder import recorder_for
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
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})
MAX_ID_LENGTH = 256  # our ids are ≤ 64 (Google) and GUIDs (Graph); anything longer is not ours
MAX_VALIDATION_TOKEN = 4096  # Graph's tokens are ~120 characters
MAX_BATCH = 1000  # notifications per Graph POST we look at
AUTH_CACHE_SIZE = 100_000  # ids; about 20 MB at most, then the cache starts over

# push id → its owner and secret hash; per app, so test apps over different databases never mix.
_auth_caches: weakref.WeakKeyDictionary[web.Application, dict[str, repo.PushAuth]] = weakref.WeakKeyDictionary()


def _secret_ok(secret: str | None, stored_hash: str | None) -> bool:
    """Constant-time check of a channel token / clientState against its stored SHA-256."""
    if not secret or not stored_hash:
        return False
    return hmac.compare_digest(hashlib.sha256(secret.encode()).hexdigest(), stored_hash)


def _ignored(provider: str, reason: str, n: int = 1) -> None:
    WEBHOOK_NOTIFICATIONS_IGNORED.labels(provider, reason).inc(n)


def _message_number(raw: str | None) -> int | None:
    """X-Goog-Message-Number when it is a usable integer (it is only kept for diagnosis)."""
    try:
        number = int(raw) if raw is not None else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number < 2**63 else None


async def _owners(request: web.Request, push_ids: Sequence[str]) -> dict[str, repo.PushAuth]:
    """The owners of these push ids: cached, else read once (unknown ids are absent).

    A stopped channel stays cached; its late messages can at most cause one harmless sync.
    """
    cache = _auth_caches.setdefault(request.app, {})
    missing = [p for p in push_ids if p not in cache]
    if missing:
        deps = request.app[DEPS]
        async with deps.engine.connect() as conn:
            found = await repo.find_auth(session=conn, push_ids=missing)
        if len(cache) + len(found) > AUTH_CACHE_SIZE:
            cache.clear()
        cache.update(found)
    return {p: cache[p] for p in push_ids if p in cache}


@routes.post("/webhooks/google")
async def google(request: web.Request) -> web.Response:
    """A Google channel message: `sync` is recorded, `exists`/`not_exists` request a sync."""
    WEBHOOK_NOTIFICATIONS_RECEIVED.labels("google").inc()
    channel_id = request.headers.get("X-Goog-Channel-ID", "")
    state = request.headers.get("X-Goog-Resource-State", "")
    if not channel_id or len(channel_id) > MAX_ID_LENGTH or state not in GOOGLE_STATES:
        _ignored("google", "malformed")
        raise BadRequest("X-Goog-Channel-ID and a known X-Goog-Resource-State are required")
    owner = (await _owners(request, [channel_id])).get(channel_id)
    if owner is None or owner.kind != repo.GOOGLE:
        _ignored("google", "unknown_channel")
        raise NotFound("unknown channel")
    if not _secret_ok(request.headers.get("X-Goog-Channel-Token"), owner.secret_hash):
        _ignored("google", "bad_secret")
        raise Unauthorized("channel token does not match")
    deps = request.app[DEPS]
    number = _message_number(request.headers.get("X-Goog-Message-Number"))
    if state == "sync":  # the handshake: proves the channel, asks for nothing
        _ignored("google", "sync_message")
        async with deps.sessions.begin() as session:
            await repo.record_message(session=session, link_ids=[owner.link_id], now=deps.clock.now(), number=number)
    else:
        await recorder_for(request.app, deps, "google").record([owner.link_id], number)
    return web.Response(status=200)


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
    """Authenticate a batch of Graph notifications, then record changes and lifecycle events."""
    items = await _graph_items(request)
    owners = await _owners(request, list({i.subscription_id for i in items})) if items else {}
    authentic = _authentic(items, owners)
    deps = request.app[DEPS]
    changes = [owner.link_id for item, owner in authentic if item.lifecycle_event is None]
    if changes:
        unique = sorted(set(changes))
        if len(unique) < len(changes):
            WEBHOOK_NOTIFICATIONS_COALESCED.labels("outlook").inc(len(changes) - len(unique))
        await recorder_for(request.app, deps, "outlook").record(unique)
    lifecycle = [(item, owner) for item, owner in authentic if item.lifecycle_event is not None]
    if lifecycle:
        async with deps.sessions.begin() as session:
            requested = await _lifecycle(deps, session, lifecycle)
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


def _authentic(items: list[GraphItem], owners: dict[str, repo.PushAuth]) -> list[tuple[GraphItem, repo.PushAuth]]:
    """Items whose subscription is ours and whose clientState matches; the rest are counted."""
    out = []
    for item in items:
        owner = owners.get(item.subscription_id)
        if owner is None or owner.kind != repo.GRAPH:
            _ignored("outlook", "unknown_subscription")
        elif not _secret_ok(item.client_state, owner.secret_hash):
            _ignored("outlook", "bad_secret")
        else:
            out.append((item, owner))
    return out


async def _lifecycle(deps: Deps, session: AsyncSession, pairs: list[tuple[GraphItem, repo.PushAuth]]) -> bool:
    """reauthorizationRequired → renew now (in the push job, not here); subscriptionRemoved →
    forget it (the push job creates a new one) and catch up; missed → full resync.

    True if a sync request was written.
    """
    now = deps.clock.now()
    by_event: dict[str, list[int]] = {}
    for item, owner in pairs:
        by_event.setdefault(item.lifecycle_event or "", []).append(owner.link_id)
    for event in set(by_event) - LIFECYCLE_EVENTS:
        _ignored("outlook", "unknown_lifecycle_event", len(by_event[event]))
    if renew := by_event.get("reauthorizationRequired"):
        await repo.schedule_now(session=session, link_ids=renew, now=now)
    if removed := by_event.get("subscriptionRemoved"):
        await repo.clear(session=session, link_ids=removed, renew_at=now, error="push: Graph removed the subscription")
        await request_sync(session=session, now=now, link_ids=removed)
    if missed := by_event.get("missed"):
        await request_sync(session=session, now=now, link_ids=missed, full=True)
    return bool(removed or missed)
