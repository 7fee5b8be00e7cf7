"""Deliver signed webhook notifications to the main API from the durable outbox.

At least once, with the same event id on every retry; exponential backoff for
`notify.retry_for_seconds`. Runs on its own sweep with its own timeouts, so a slow or dead
receiver never delays syncs or writes.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import timedelta

import aiohttp

from jobs.backoff import next_attempt
from worker.db import notifications as repo
from worker.db.tables import WebhookDelivery, WebhookEndpoint
from worker.deps import Deps
from worker.logging import get_logger
from worker.signing import HEADER, header_value

log = get_logger(__name__)
LEASE_SECONDS = 60  # longer than one attempt's timeout, so a live sender keeps its lease


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status: int | None
    error: str | None


def _secrets(deps: Deps, endpoint: WebhookEndpoint) -> list[str]:
    """The current secret, plus the previous one while its overlap lasts."""
    secrets = [deps.cipher.decrypt(endpoint.secret_enc)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_enc and expires and expires > deps.clock.now():
        secrets.append(deps.cipher.decrypt(endpoint.previous_secret_enc))
    return secrets


async def _post(deps: Deps, delivery: WebhookDelivery, endpoint: WebhookEndpoint) -> Outcome:
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        HEADER: header_value(_secrets(deps, endpoint), int(time.time()), body),
        "Calsync-Event-Id": delivery.event_id,
        "Calsync-Event-Type": delivery.event_type,
    }
    timeout = aiohttp.ClientTimeout(total=deps.settings.notify.timeout_seconds)
    try:
        async with deps.http.post(endpoint.url, data=body, headers=headers, timeout=timeout) as resp:
            return Outcome(200 <= resp.status < 300, resp.status, None if resp.status < 300 else f"HTTP {resp.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Outcome(False, None, type(exc).__name__)


async def _deliver(deps: Deps, delivery: WebhookDelivery, endpoint: WebhookEndpoint) -> bool:
    outcome = await _post(deps, delivery, endpoint)
    now = deps.clock.now()
    n = deps.settings.notify
    delay = next_attempt(delivery.attempts + 1, base=n.backoff_base_seconds, cap=n.backoff_cap_seconds)
    retry_at = now + timedelta(seconds=delay)
    give_up = retry_at > delivery.created_at + timedelta(seconds=n.retry_for_seconds)
    async with deps.sessions.begin() as session:
        await repo.record_attempt(
            session=session,
            delivery_id=delivery.id,
            delivered=outcome.delivered,
            now=now,
            status_code=outcome.status,
            error=outcome.error,
            next_attempt_at=None if outcome.delivered or give_up else retry_at,
        )
    log.info(
        "notify.attempt",
        event_type=delivery.event_type,
        event_id=delivery.event_id,
        delivered=outcome.delivered,
        status=outcome.status,
        error=outcome.error,
        attempt=delivery.attempts + 1,
    )
    return outcome.delivered


async def run_once(deps: Deps) -> dict[str, int]:
    """Send every due delivery once (bounded concurrency); counts of delivered and not."""
    n = deps.settings.notify
    async with deps.sessions.begin() as session:
        batch = await repo.claim_due(
            session=session, owner=deps.worker_id, now=deps.clock.now(), lease_seconds=LEASE_SECONDS, limit=n.batch
        )
    limit = asyncio.Semaphore(n.concurrency)

    async def one(delivery: WebhookDelivery, endpoint: WebhookEndpoint) -> bool:
        async with limit:
            return await _deliver(deps, delivery, endpoint)

    results = await asyncio.gather(*(one(d, e) for d, e in batch))
    return {"delivered": sum(results), "failed": len(results) - sum(results)}


async def sweep(deps: Deps) -> None:
    """The periodic entry: drain what is due now (the scheduler calls it every sweep_seconds)."""
    while (await run_once(deps))["delivered"] >= deps.settings.notify.batch:
        pass
