"""Provider pages become unavailability rows: map with the busy policy, apply set-based, count.

Shared by the sync job (full and incremental) and bulk ingest (a full listing of a range).
The caller owns the transaction; `Ingest` only remembers what a full listing kept, so the
rows it no longer returned can be deleted in that same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from providers.base import ChangePage, Quarantined, Window
from providers.rules import DEFAULT_POLICY, BusyInterval, BusyPolicy, quarantined_busy, to_busy
from worker.config import SyncSettings
from worker.db import external_changes, quarantine, unavailability
from worker.db.external_changes import OwnEvent
from worker.db.quarantine import QuarantineRow
from worker.db.unavailability import BusyRow

T = TypeVar("T")

# camelCase keys of the `busyRules` object in company/resource settings → BusyPolicy fields.
RULE_KEYS = {"tentative": "tentative", "declined": "declined", "allDay": "all_day", "oof": "oof"}
RULE_KEYS |= {"workingElsewhere": "working_elsewhere", "free": "free"}


def sync_window(now: datetime, settings: SyncSettings) -> Window:
    """Today's sync window: whole UTC days, so it changes (rolls forward) once a day."""
    today = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
    return Window(
        today - timedelta(days=settings.window_past_days), today + timedelta(days=settings.window_future_days)
    )


def busy_policy(company_settings: Mapping[str, Any], resource_settings: Mapping[str, Any]) -> BusyPolicy:
    """The defaults, overridden by the company's `busyRules`, overridden by the resource's."""
    return replace(DEFAULT_POLICY, **(_rules(company_settings) | _rules(resource_settings)))


def _rules(settings: Mapping[str, Any]) -> dict[str, bool]:
    raw = settings.get("busyRules")
    if not isinstance(raw, Mapping):
        return {}
    return {RULE_KEYS[k]: v for k, v in raw.items() if k in RULE_KEYS and isinstance(v, bool)}


def policy_as_json(policy: BusyPolicy) -> dict[str, bool]:
    """A policy in the camelCase shape of `busyRules` (for docs and status)."""
    names = {v: k for k, v in RULE_KEYS.items()}
    return {names[f.name]: getattr(policy, f.name) for f in fields(policy)}


@dataclass(frozen=True, slots=True)
class Mapper:
    """How one link's events become busy rows: the resource's zone, the window, the policy."""

    tz: ZoneInfo
    window: Window
    policy: BusyPolicy


@dataclass(slots=True)
class PageRows:
    """One page, mapped: busy rows to upsert, events no longer busy, unreadable events."""

    busy: list[BusyRow]
    gone: list[str]
    quarantined: list[QuarantineRow]
    readable: list[str]
    series: bool = False  # the page holds instances of a recurring series
    ours: list[OwnEvent] = field(default_factory=list)  # events calsync wrote, as listed now
    removed: list[str] = field(default_factory=list)  # events deleted at the provider


def map_page(page: ChangePage, mapper: Mapper) -> PageRows:
    """Map every event of a page (the last mention of an event id wins)."""
    latest: dict[str, BusyRow | None] = {}
    for event in page.events:
        interval = to_busy(event, resource_tz=mapper.tz, window=mapper.window, policy=mapper.policy)
        latest[event.id] = _row(interval, event.etag) if interval else None
    held: list[QuarantineRow] = []
    for item in page.quarantined:
        event_id = item.id or _synthetic_id(item)
        held.append(QuarantineRow(event_id, item.reason, dict(item.raw)))
        interval = quarantined_busy(replace(item, id=event_id), window=mapper.window)
        latest[event_id] = _row(interval, None) if interval else None
    readable = [e.id for e in page.events]
    busy = [row for row in latest.values() if row is not None]
    gone = [event_id for event_id, row in latest.items() if row is None]
    ours = [
        OwnEvent(e.id, e.appointment_tag, e.start, e.end, e.etag)
        for e in page.events
        if e.appointment_tag and not e.removed and isinstance(e.start, datetime) and isinstance(e.end, datetime)
    ]
    removed = [e.id for e in page.events if e.removed]
    return PageRows(busy, gone, held, readable, any(e.series_id for e in page.events), ours, removed)


def _row(interval: BusyInterval, etag: str | None) -> BusyRow:
    return BusyRow(
        interval.event_id, interval.start, interval.end, interval.all_day, interval.show_as, interval.rule, etag
    )


def _synthetic_id(item: Quarantined) -> str:
    """A stable id for an item the provider gave no id (so it is stored once, not per sync)."""
    digest = hashlib.sha256(json.dumps(item.raw, sort_keys=True, default=str).encode()).hexdigest()
    return f"calsync:unreadable:{digest[:32]}"


@dataclass(slots=True)
class Tally:
    """What a sync or bulk run did to one link's rows."""

    events: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    quarantined: int = 0
    series: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


@dataclass
class Ingest:
    """Applies mapped pages of one link inside the caller's transaction.

    `full`: the pages are a complete listing, so `finish` deletes rows (and quarantined
    events) they did not return; with `range_`, only rows overlapping that range.
    `fresh`: the link had no rows when the listing began (its first full sync), so an event
    the listing has not returned before is a plain insert, not an upsert.
    `held_before`: the link had quarantined events when the listing began (else a full
    listing has none of those to forget).
    `appointments`: the resource had confirmed appointments when the sync began (read with
    the link, so a sync of a resource without any asks nothing more about conflicts).
    """

    session: Any
    resource_id: str
    link_id: int
    now: datetime
    full: bool
    range_: Window | None = None
    fresh: bool = False
    held_before: bool = True
    appointments: bool = True
    tally: Tally = field(default_factory=Tally)
    _kept: set[str] = field(default_factory=set)  # busy ids of a full listing so far
    _held: list[str] = field(default_factory=list)

    async def apply(self, rows: PageRows) -> None:
        """Upsert busy rows, delete rows of events that no longer block, record the unreadable."""
        s, link = self.session, self.link_id
        busy = rows.busy
        added = 0
        if self.fresh:  # rows of ids this listing returned before (it may repeat one) are upserted
            new = [r for r in busy if r.event_id not in self._kept]
            busy = [r for r in busy if r.event_id in self._kept]
            added = await unavailability.insert_new(
                session=s, resource_id=self.resource_id, link_id=link, rows=new, now=self.now
            )
        upserted, updated = await unavailability.upsert(
            session=s, resource_id=self.resource_id, link_id=link, rows=busy, now=self.now
        )
        added += upserted
        self.tally.added += added
        self.tally.updated += updated
        self.tally.removed += await unavailability.delete_events(session=s, link_id=link, event_ids=rows.gone)
        self.tally.quarantined += await quarantine.upsert(session=s, link_id=link, rows=rows.quarantined, now=self.now)
        if (added or updated) and self.appointments:  # only busy time written now can conflict
            await external_changes.report_conflicts(
                session=s,
                resource_id=self.resource_id,
                link_id=link,
                event_ids=[r.event_id for r in rows.busy],
                now=self.now,
            )
        await external_changes.report_own_event_changes(
            session=s, link_id=link, ours=rows.ours, removed=rows.removed, now=self.now
        )
        self.tally.events += len(rows.readable) + len(rows.quarantined)
        self.tally.series |= rows.series
        if self.full:
            self._kept.update(r.event_id for r in rows.busy)
            self._held += [q.event_id for q in rows.quarantined]
        else:
            await quarantine.release(session=s, link_id=link, event_ids=rows.readable)

    async def finish(self) -> Tally:
        """After the last page of a full listing: remove what the listing no longer returned."""
        if not self.full:
            return self.tally
        s, link, kept = self.session, self.link_id, list(self._kept)
        if self.range_ is None:
            if not self.fresh:  # a fresh link's rows are all this listing's: nothing to reconcile
                self.tally.removed += await unavailability.delete_unseen(session=s, link_id=link, keep_ids=kept)
            if self.held_before:
                await quarantine.delete_unseen(session=s, link_id=link, keep_ids=self._held)
        else:
            r = self.range_
            self.tally.removed += await unavailability.delete_unseen_in_range(
                session=s, link_id=link, keep_ids=kept, start=r.start, end=r.end
            )
        return self.tally


async def prefetched(pages: AsyncIterator[T], depth: int = 2) -> AsyncGenerator[T, None]:
    """Iterate `pages` while the next ones are already being fetched (fetch overlaps writes)."""
    queue: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue(depth)

    async def pump() -> None:
        try:
            async for page in pages:
                await queue.put((False, page))
            await queue.put((True, None))
        except Exception as exc:  # handed to the consumer, which re-raises it
            await queue.put((True, exc))

    task = asyncio.create_task(pump())
    try:
        while True:
            done, item = await queue.get()
            if isinstance(item, Exception):
                raise item
            if done:
                return
            yield item
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
