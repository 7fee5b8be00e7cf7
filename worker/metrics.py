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
