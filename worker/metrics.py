"""Every Prometheus metric calsync exports, in one registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "calsync_http_requests_total", "HTTP requests served", ["method", "route", "status"], registry=REGISTRY
)
HTTP_LATENCY = Histogram(
    "calsync_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
SCHEDULER_HEARTBEATS = Counter(
    "calsync_scheduler_heartbeats_total", "Heartbeat job runs (the scheduler is alive)", registry=REGISTRY
)
SCHEDULER_LAST_HEARTBEAT = Gauge(
    "calsync_scheduler_last_heartbeat_timestamp_seconds", "Unix time of the last heartbeat", registry=REGISTRY
)
CACHE_PURGES = Counter("calsync_cache_purges_total", "Availability cache purges", ["outcome"], registry=REGISTRY)
AVAILABILITY_CACHE = Counter(
    "calsync_availability_cache_total", "Availability answers by cache outcome", ["outcome"], registry=REGISTRY
)
CACHE_ERRORS = Counter(
    "calsync_cache_errors_total", "Redis failures the availability cache swallowed", ["op"], registry=REGISTRY
)

# --- Operations: counters incremented where the work happens, gauges refreshed from the DB
# by jobs.housekeeping.refresh_gauges (every replica exports the same values: use max()).
SYNC_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

SYNCS = Counter(
    "calsync_syncs_total",
    "Link syncs by provider and outcome (ok, failed, reauth_required, cursor_expired, skipped)",
    ["provider", "outcome"],
    registry=REGISTRY,
)
SYNC_DURATION = Histogram(
    "calsync_sync_duration_seconds", "Wall time of one link sync", ["provider"], buckets=SYNC_BUCKETS, registry=REGISTRY
)
EVENTS_INGESTED = Counter(
    "calsync_events_ingested_total",
    "Provider events applied by syncs (change: added, updated, removed, quarantined)",
    ["provider", "change"],
    registry=REGISTRY,
)
WEBHOOK_NOTIFICATIONS_RECEIVED = Counter(
    "calsync_webhook_notifications_received_total",
    "Push notifications received from providers (before any filtering)",
    ["provider"],
    registry=REGISTRY,
)
WEBHOOK_NOTIFICATIONS_IGNORED = Counter(
    "calsync_webhook_notifications_ignored_total",
    "Push notifications that recorded nothing (reason: unknown_channel, bad_secret, sync_message, stale, ...)",
    ["provider", "reason"],
    registry=REGISTRY,
)
WEBHOOK_NOTIFICATIONS_COALESCED = Counter(
    "calsync_webhook_notifications_coalesced_total",
    "Push notifications folded into a sync request that was already pending",
    ["provider"],
    registry=REGISTRY,
)
PROVIDER_REQUESTS = Counter(
    "calsync_provider_requests_total",
    "HTTP requests to provider APIs by final status (a number, or 'error' for no response)",
    ["provider", "status"],
    registry=REGISTRY,
)
PROVIDER_RETRIES = Counter(
    "calsync_provider_retries_total",
    "Request-level retries of provider calls (reason: rate_limited, unavailable, timeout, connection)",
    ["provider", "reason"],
    registry=REGISTRY,
)
TOKEN_REFRESHES = Counter(
    "calsync_token_refreshes_total",
    "OAuth access-token refreshes (outcome: ok, invalid_grant, error)",
    ["provider", "outcome"],
    registry=REGISTRY,
)
CONNECTIONS = Gauge(
    "calsync_connections",
    "Connections (external calendars) by provider and status",
    ["provider", "status"],
    registry=REGISTRY,
)
CONNECTIONS_REAUTH_REQUIRED = Gauge(
    "calsync_connections_reauth_required",
    "Connections waiting for the resource to re-authorise",
    ["provider"],
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge("calsync_outbox_depth", "Appointment writes not yet done, by state", ["state"], registry=REGISTRY)
OUTBOX_OLDEST_AGE = Gauge(
    "calsync_outbox_oldest_age_seconds", "Age of the oldest appointment write not yet done", registry=REGISTRY
)
PUSH_NEAR_EXPIRY = Gauge(
    "calsync_push_near_expiry",
    "Google channels / Graph subscriptions expiring within the hour or already expired",
    ["kind"],
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES_BACKLOG = Gauge(
    "calsync_webhook_deliveries_backlog",
    "Outgoing event notifications to the main API not yet delivered (status: pending, failed)",
    ["status"],
    registry=REGISTRY,
)
QUARANTINED_EVENTS = Gauge(
    "calsync_quarantined_events", "Provider events kept aside because they could not be parsed", registry=REGISTRY
)
GAUGES_REFRESHED = Gauge(
    "calsync_gauges_refreshed_timestamp_seconds",
    "Unix time the DB-backed gauges were last refreshed",
    registry=REGISTRY,
)
PUSH_RENEWALS = Counter(
    "calsync_push_renewals_total",
    "Push actions on links (kind: google_channel, graph_subscription; outcome: opened, renewed, recreated,"
    " stopped, failed)",
    ["kind", "outcome"],
    registry=REGISTRY,
)
APPOINTMENT_WRITES = Counter(
    "calsync_appointment_writes_total",
    "Outbox entries handled by the write job, by outcome (written, deleted, moved, unchanged, waiting, failed,"
    " retry, reauth_required, skipped)",
    ["outcome"],
    registry=REGISTRY,
)
