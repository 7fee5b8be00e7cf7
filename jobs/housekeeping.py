"""Housekeeping jobs: the heartbeat that shows the scheduler runs, and the DB-backed gauges."""

from __future__ import annotations

import time
from datetime import timedelta

from worker.db import status as status_repo
from worker.deps import Deps
from worker.logging import get_logger
from worker.metrics import (
    CONNECTIONS,
    CONNECTIONS_REAUTH_REQUIRED,
    GAUGES_REFRESHED,
    OUTBOX_DEPTH,
    OUTBOX_OLDEST_AGE,
    PUSH_NEAR_EXPIRY,
    QUARANTINED_EVENTS,
    SCHEDULER_HEARTBEATS,
    SCHEDULER_LAST_HEARTBEAT,
    WEBHOOK_DELIVERIES_BACKLOG,
)

log = get_logger(__name__)

# Every label value a gauge can take, so a count that drops to nothing reads 0, not stale.
PROVIDERS = ("google", "outlook")
CONNECTION_STATUSES = ("pending", "active", "reauth_required", "error")
OUTBOX_STATES = ("pending", "waiting_calendar", "failed")
PUSH_KINDS = ("google_channel", "graph_subscription")
# Renewal runs well before expiry; a channel this close to (or past) it means renewal is failing.
NEAR_EXPIRY = timedelta(hours=1)


async def heartbeat(deps: Deps) -> None:
    """Record that the scheduler is alive (metric; also what /status shows)."""
    SCHEDULER_HEARTBEATS.inc()
    SCHEDULER_LAST_HEARTBEAT.set(deps.clock.now().timestamp())


async def refresh_gauges(deps: Deps) -> None:
    """Set the gauges that come from the database (connections, outbox, push expiry, backlog)."""
    started = time.perf_counter()
    now = deps.clock.now()
    async with deps.sessions.begin() as session:
        connections = await status_repo.connection_counts(session=session)
        outbox = await status_repo.outbox_backlog(session=session)
        near = await status_repo.push_near_expiry(session=session, now=now, within=NEAR_EXPIRY)
        deliveries = await status_repo.delivery_counts(session=session)
        quarantined = await status_repo.quarantined_count(session=session)
    for provider in PROVIDERS:
        for state in CONNECTION_STATUSES:
            CONNECTIONS.labels(provider, state).set(connections.get((provider, state), 0))
        CONNECTIONS_REAUTH_REQUIRED.labels(provider).set(connections.get((provider, "reauth_required"), 0))
    for state in OUTBOX_STATES:
        OUTBOX_DEPTH.labels(state).set(outbox.by_state.get(state, 0))
    OUTBOX_OLDEST_AGE.set(outbox.oldest_age_seconds(now))
    for kind in PUSH_KINDS:
        PUSH_NEAR_EXPIRY.labels(kind).set(near.get(kind, 0))
    for state, count in deliveries.items():
        WEBHOOK_DELIVERIES_BACKLOG.labels(state).set(count)
    QUARANTINED_EVENTS.set(quarantined)
    GAUGES_REFRESHED.set(now.timestamp())
    log.debug("gauges.refreshed", duration_ms=round((time.perf_counter() - started) * 1000, 2), outbox=outbox.total)
