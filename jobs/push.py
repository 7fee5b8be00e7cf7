"""Open, renew and stop Google watch channels and Graph subscriptions for read links.

Push is a hint, never the only path: a link whose push failed keeps its short poll (the
sync cadence reads `push_expires_at` / `push_error`), and failures are retried with
backoff. Renewal times carry random spread so thousands of links never renew at once.
Google renewal opens the new channel first and stops the old one after; Graph renewal is a
PATCH, and a subscription Graph no longer knows is created again (with a catch-up sync).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import random
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from jobs import connect
from jobs.backoff import next_attempt
from jobs.clients import client_for
from providers.errors import BadRequestError, NotFoundError, ProviderError, ReauthRequiredError
from providers.google.client import GoogleCalendarClient
from providers.outlook.client import GraphCalendarClient
from worker import wakeups
from worker.budget import budget_for
from worker.config import PushSettings
from worker.crashpoints import crashpoint
from worker.db import push as repo
from worker.db.connections import mark_reauth_required
from worker.db.links import request_sync
from worker.db.tables import CalendarLink, ExternalCalendar
from worker.deps import Deps
from worker.logging import get_logger
from worker.metrics import PUSH_RENEWALS

log = get_logger(__name__)

Status = Literal["opened", "renewed", "recreated", "stopped", "failed", "skipped", "fresh"]
GOOGLE_PATH = "/webhooks/google"
OUTLOOK_PATH = "/webhooks/outlook"
LIFECYCLE_PATH = "/webhooks/outlook/lifecycle"
PUSH = "push"  # wake-up kind: a renewal became due early (Graph lifecycle)


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What one push action on one link did."""

    link_id: int
    status: Status
    error: str | None = None


def secret_hash(secret: str) -> str:
    """The stored form of a channel token / clientState: SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """A random channel token / clientState (43 chars: within Google's 256 and Graph's 128)."""
    return secrets.token_urlsafe(32)


def new_channel_id(link_id: int) -> str:
    """A fresh Google channel id (≤ 64 chars; never reused, Google rejects duplicates)."""
    return f"calsync-{link_id}-{uuid.uuid4().hex}"


def renew_time(opened: datetime, expires: datetime, s: PushSettings, rng: random.Random | None = None) -> datetime:
    """When to renew: `renew_fraction` of the lifetime before expiry, plus random spread earlier."""
    share = s.renew_fraction + s.spread_fraction * (rng or random).random()
    return expires - (expires - opened) * share


def webhook_url(deps: Deps, path: str) -> str:
    return deps.settings.server.public_url + path


async def ensure_push(deps: Deps, link_id: int) -> PushOutcome:
    """Open, renew or stop the link's push now if it is due (or never opened); else "fresh"."""
    if not await _claim(deps, link_ids=[link_id], limit=1):
        return PushOutcome(link_id, "fresh")
    return await _service(deps, link_id)


async def renew_due(deps: Deps) -> dict[str, int]:
    """Act on every link whose push is due: never opened, near expiry, failed, or deselected."""
    s = deps.settings.push
    counts: dict[str, int] = {}
    if not s.enabled or not deps.settings.server.public_url:
        return counts
    started = time.perf_counter()
    gate = asyncio.Semaphore(s.concurrency)
    while ids := await _claim(deps, link_ids=None, limit=s.batch):
        for outcome in await asyncio.gather(*(_gated(gate, _service(deps, i)) for i in ids)):
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        if len(ids) < s.batch:
            break
    if counts:
        log.info("push.swept", duration_ms=round((time.perf_counter() - started) * 1000, 1), **counts)
    return counts


run_once = renew_due  # the registry's drain-once entry point (tests call it instead of sleeping)


async def _gated(gate: asyncio.Semaphore, work: Awaitable[PushOutcome]) -> PushOutcome:
    async with gate:
        return await work


async def _claim(deps: Deps, *, link_ids: list[int] | None, limit: int) -> list[int]:
    now = deps.clock.now()
    until = now + timedelta(seconds=deps.settings.push.lease_seconds)
    async with deps.sessions.begin() as session:
        return await repo.claim_due(session=session, now=now, until=until, limit=limit, link_ids=link_ids)


async def _service(deps: Deps, link_id: int) -> PushOutcome:
    """One claimed link: stop (deselected), open/renew a channel, or create/renew a subscription."""
    async with deps.sessions.begin() as session:
        row = await repo.load(session=session, link_id=link_id)
    if row is None or row[1].status != "active":
        return PushOutcome(link_id, "skipped")
    link, connection = row
    try:
        client = client_for(deps, connection, budget=budget_for(deps))
        if not link.read:
            return await _stop_and_clear(deps, client, link)
        if isinstance(client, GoogleCalendarClient):
            return await _open_channel(deps, client, link)
        return await _keep_subscription(deps, client, link)
    except ReauthRequiredError as exc:
        await _reauth(deps, connection, exc)
        return await _failed(deps, link, connection, exc)
    except ProviderError as exc:
        return await _failed(deps, link, connection, exc)
    except Exception as exc:  # the lease expires and the link is retried; the sweep must go on
        log.exception("push.crashed", link_id=link_id)
        return PushOutcome(link_id, "failed", type(exc).__name__)


async def _open_channel(deps: Deps, client: GoogleCalendarClient, link: CalendarLink) -> PushOutcome:
    """Open a new channel (id and token hash stored first), then stop the one it replaces."""
    old = repo.PushState.of(link)
    channel_id, token = new_channel_id(link.id), new_secret()
    async with deps.sessions.begin() as session:
        await repo.begin_channel(session=session, link_id=link.id, push_id=channel_id, secret_hash=secret_hash(token))
    opened = deps.clock.now()
    try:
        channel = await client.watch(
            link.calendar_id,
            channel_id=channel_id,
            address=webhook_url(deps, GOOGLE_PATH),
            token=token,
            ttl_seconds=deps.settings.push.google_ttl_seconds,
        )
    except Exception:
        async with deps.sessions.begin() as session:
            await repo.restore(session=session, link_id=link.id, state=old)
        raise
    crashpoint("push.mid_renewal")
    expires = channel.expires_at or opened + timedelta(seconds=deps.settings.push.google_ttl_seconds)
    async with deps.sessions.begin() as session:
        await repo.save_channel(
            session=session,
            link_id=link.id,
            push_id=channel_id,
            resource_id=channel.resource_id,
            expires_at=expires,
            renew_at=renew_time(opened, expires, deps.settings.push),
        )
    live_before = old.push_id is not None and old.expires_at is not None and old.expires_at > opened
    if live_before and old.resource_id:
        await _quietly(lambda: client.unwatch(old.push_id or "", old.resource_id or ""), link.id, "unwatch")
    status: Status = "renewed" if live_before else "opened"
    return await _done(deps, link, repo.GOOGLE, status, catch_up=not live_before)


async def _keep_subscription(deps: Deps, client: GraphCalendarClient, link: CalendarLink) -> PushOutcome:
    """PATCH a live subscription's expiry; create one when there is none or Graph lost it."""
    now = deps.clock.now()
    expires = now + timedelta(minutes=deps.settings.push.subscription_minutes)
    live = link.push_kind == repo.GRAPH and link.push_id and link.push_expires_at and link.push_expires_at > now
    if live and link.push_id:
        try:
            sub = await client.renew(link.push_id, expires)
        except (NotFoundError, BadRequestError) as exc:  # gone or unrenewable: create it again
            log.info("push.subscription_lost", link_id=link.id, error=type(exc).__name__)
        else:
            await _save_subscription(deps, link.id, sub.id, now, sub.expires_at, None)
            return await _done(deps, link, repo.GRAPH, "renewed", catch_up=False)
    secret = new_secret()
    sub = await client.subscribe(
        link.calendar_id,
        notification_url=webhook_url(deps, OUTLOOK_PATH),
        lifecycle_url=webhook_url(deps, LIFECYCLE_PATH),
        client_state=secret,
        expires_at=expires,
    )
    crashpoint("push.mid_renewal")
    await _save_subscription(deps, link.id, sub.id, now, sub.expires_at, secret_hash(secret))
    if link.push_id and link.push_kind == repo.GRAPH:
        old_id = link.push_id
        await _quietly(lambda: client.unsubscribe(old_id), link.id, "unsubscribe")
    return await _done(deps, link, repo.GRAPH, "recreated" if link.push_id else "opened", catch_up=True)


async def _save_subscription(
    deps: Deps, link_id: int, sub_id: str, now: datetime, expires: datetime, hashed: str | None
) -> None:
    async with deps.sessions.begin() as session:
        await repo.save_subscription(
            session=session,
            link_id=link_id,
            push_id=sub_id,
            expires_at=expires,
            renew_at=renew_time(now, expires, deps.settings.push),
            secret_hash=hashed,
        )


async def _done(deps: Deps, link: CalendarLink, kind: str, status: Status, *, catch_up: bool) -> PushOutcome:
    """Count the success; after a gap in push, ask for a sync so nothing in the gap is missed."""
    PUSH_RENEWALS.labels(kind, status).inc()
    log.info("push.ready", link_id=link.id, kind=kind, status=status)
    if catch_up and link.last_synced_at is not None:
        async with deps.sessions.begin() as session:
            await request_sync(session=session, now=deps.clock.now(), link_ids=[link.id])
        await wakeups.wake(deps.redis, deps.prefix, wakeups.SYNC)
    return PushOutcome(link.id, status)


async def _failed(deps: Deps, link: CalendarLink, connection: ExternalCalendar, exc: Exception) -> PushOutcome:
    """Show the failure on the link and retry with full-jitter backoff."""
    s = deps.settings.push
    # At least a second: a link that failed is never due again within the same sweep.
    delay = max(1.0, next_attempt(link.push_failures + 1, base=s.backoff_base_seconds, cap=s.backoff_cap_seconds))
    error = f"push: {type(exc).__name__}: {exc}"[:500]
    async with deps.sessions.begin() as session:
        now = deps.clock.now()
        await repo.fail(session=session, link_id=link.id, error=error, retry_at=now + timedelta(seconds=delay), now=now)
    PUSH_RENEWALS.labels(_kind(link, connection), "failed").inc()
    log.warning("push.failed", link_id=link.id, error=error, retry_in_s=round(delay, 1))
    return PushOutcome(link.id, "failed", error)


async def _reauth(deps: Deps, connection: ExternalCalendar, exc: ReauthRequiredError) -> None:
    async with deps.sessions.begin() as session:
        await mark_reauth_required(
            session=session, connection_id=connection.id, reason=str(exc)[:500], now=deps.clock.now()
        )


async def stop_push(deps: Deps, link: CalendarLink, connection: ExternalCalendar | None = None) -> bool:
    """Stop the link's channel / delete its subscription (disconnect, deselect); True if one was held."""
    if link.push_id is None:
        return False
    if connection is None:
        async with deps.sessions.begin() as session:
            row = await repo.load(session=session, link_id=link.id)
        connection = row[1] if row else None
    if connection is not None and connection.refresh_token_enc and connection.status == "active":
        client = client_for(deps, connection, budget=budget_for(deps))
        await _quietly(lambda: _stop(client, link), link.id, "stop")
    async with deps.sessions.begin() as session:
        await repo.clear(session=session, link_ids=[link.id])
    return True


async def stop_for_connection(deps: Deps, connection: ExternalCalendar, links: list[CalendarLink]) -> None:
    """Disconnect hook: stop every channel / subscription the (already deleted) links held."""
    held = [link for link in links if link.push_id]
    if not held or not connection.refresh_token_enc:
        return
    client = client_for(deps, connection, budget=budget_for(deps))
    await asyncio.gather(*(_quietly(functools.partial(_stop, client, link), link.id, "stop") for link in held))
    log.info("push.stopped_for_connection", connection_id=connection.id, links=len(held))


connect.DISCONNECT_HOOKS.append(stop_for_connection)


async def _stop_and_clear(
    deps: Deps, client: GoogleCalendarClient | GraphCalendarClient, link: CalendarLink
) -> PushOutcome:
    await _stop(client, link)
    async with deps.sessions.begin() as session:
        await repo.clear(session=session, link_ids=[link.id])
    PUSH_RENEWALS.labels(_kind(link), "stopped").inc()
    return PushOutcome(link.id, "stopped")


async def _stop(client: GoogleCalendarClient | GraphCalendarClient, link: CalendarLink) -> None:
    if isinstance(client, GoogleCalendarClient):
        if link.push_id and link.push_resource_id:
            await client.unwatch(link.push_id, link.push_resource_id)
    elif link.push_id:
        await client.unsubscribe(link.push_id)


async def _quietly(call: Callable[[], Awaitable[None]], link_id: int, what: str) -> None:
    """Best-effort cleanup: an unstopped channel only expires on its own."""
    try:
        await call()
    except ProviderError as exc:
        log.info("push.cleanup_failed", link_id=link_id, what=what, error=type(exc).__name__)


def _kind(link: CalendarLink, connection: ExternalCalendar | None = None) -> str:
    if link.push_kind:
        return link.push_kind
    if connection is not None:
        return repo.GOOGLE if connection.provider == "google" else repo.GRAPH
    return "unknown"
