"""How fresh a resource's read calendars are, and the stale policy that decides what it means.

Pure code: the caller passes `now` and the link states it read. A calendar is *broken* when
its connection needs re-authorisation or failed; *stale* when its busy data has not been
known good for `stale_after` (or it was never synced, or the query leaves its sync window).
A resource's policy, resolved resource → company → config, says what a stale or broken
calendar does to an answer: "closed" turns the whole range busy, "open" answers from what
is stored. Either way the answer names the calendars and the policy that applied, so a
broken calendar never silently reads as free.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

BROKEN_STATUSES = frozenset({"reauth_required", "error"})
STALE_REASONS = frozenset({"never_synced", "stale", "outside_sync_window"})
POLICIES = ("closed", "open")


@dataclass(frozen=True, slots=True)
class LinkState:
    """What the database knows about one read calendar of a resource."""

    link_id: int
    calendar_id: str
    name: str
    provider: str
    connection_status: str
    last_synced_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    sync_requested_at: datetime | None
    push_kind: str | None
    push_expires_at: datetime | None
    push_error: str | None
    window_start: datetime | None
    window_end: datetime | None


@dataclass(frozen=True, slots=True)
class Freshness:
    link: LinkState
    last_known_good: datetime | None
    push_healthy: bool
    stale: bool
    broken: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    mode: str  # "closed" | "open"
    stale_after: timedelta
    source: str  # which level chose the mode: "resource" | "company" | "config"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Which policy applied to an answer: "none" (all fresh), "open" or "closed"."""

    applied: str
    link_ids: tuple[int, ...]


def push_healthy(link: LinkState, now: datetime) -> bool:
    """A push channel exists, has not expired and reported no error."""
    return (
        bool(link.push_kind) and link.push_expires_at is not None and link.push_expires_at > now and not link.push_error
    )


def last_known_good(link: LinkState, now: datetime) -> datetime | None:
    """Until when the stored busy data is known to match the provider.

    Polled calendars are good as of their last sync. With healthy push, a calendar stays
    good until a change is announced, i.e. until a pending sync request (or now).
    """
    if link.last_synced_at is None:
        return None
    if not push_healthy(link, now):
        return link.last_synced_at
    if link.sync_requested_at is not None:
        return max(link.last_synced_at, link.sync_requested_at)
    return now


def assess(link: LinkState, *, now: datetime, stale_after: timedelta, start: datetime, end: datetime) -> Freshness:
    """The freshness of one read calendar for a query of [start, end)."""
    good = last_known_good(link, now)
    reasons: list[str] = []
    if link.connection_status in BROKEN_STATUSES:
        reasons.append(link.connection_status)
    if good is None:
        reasons.append("never_synced")
    elif now - good > stale_after:
        reasons.append("stale")
    if (link.window_start is not None and start < link.window_start) or (
        link.window_end is not None and end > link.window_end
    ):
        reasons.append("outside_sync_window")
    broken = link.connection_status in BROKEN_STATUSES
    stale = any(r in STALE_REASONS for r in reasons)
    return Freshness(link, good, push_healthy(link, now), stale=stale, broken=broken, reasons=tuple(reasons))


def _valid_mode(value: Any) -> str | None:
    return value if value in POLICIES else None


def _valid_seconds(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    return float(value) if ok else None


def resolve_policy(
    resource_settings: Mapping[str, Any],
    company_settings: Mapping[str, Any],
    *,
    default_mode: str,
    default_stale: float,
) -> Policy:
    """`stalePolicy` and `staleAfterSeconds` from the resource, else the company, else config."""
    mode, source = default_mode, "config"
    for level, values in (("company", company_settings), ("resource", resource_settings)):
        chosen = _valid_mode(_key(values, "stalePolicy", "stale_policy"))
        if chosen:
            mode, source = chosen, level
    seconds = default_stale
    for values in (company_settings, resource_settings):
        seconds = _valid_seconds(_key(values, "staleAfterSeconds", "stale_after_seconds")) or seconds
    return Policy(mode=mode, stale_after=timedelta(seconds=seconds), source=source)


def _key(values: Mapping[str, Any], camel: str, snake: str) -> Any:
    """Settings JSON may spell a key camelCase (like `busyRules`) or snake_case."""
    return values.get(camel, values.get(snake))


def verdict(policy: Policy, calendars: Iterable[Freshness]) -> Verdict:
    """ "none" when every read calendar is fresh, else the resource's mode and the culprits."""
    culprits = tuple(f.link.link_id for f in calendars if f.stale or f.broken)
    return Verdict(applied=policy.mode if culprits else "none", link_ids=culprits)


def assess_all(
    links: Sequence[LinkState], *, now: datetime, policy: Policy, start: datetime, end: datetime
) -> tuple[list[Freshness], Verdict]:
    """Freshness of every read calendar and the verdict of the policy over them."""
    calendars = [assess(link, now=now, stale_after=policy.stale_after, start=start, end=end) for link in links]
    return calendars, verdict(policy, calendars)
