"""events.list semantics: filters, expansion, ordering, page tokens and sync tokens.

The first page of a listing builds a sorted snapshot (the items as of that moment) and
caches it; page tokens carry the snapshot's mint sequence and the sort key of the last
item served, so later pages are a bisect into the cached snapshot, never a re-sort. If
the snapshot was evicted it is rebuilt from current state and the bisect still finds
the place. The sync token on the last page is the mint sequence of the first page, so
changes made while paging are reported by the next incremental sync.
See https://developers.google.com/workspace/calendar/api/guides/sync
"""

from __future__ import annotations

import base64
import bisect
import json
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from providers.sandbox.google import series
from providers.sandbox.google.errors import GoogleError
from providers.sandbox.google.state import Calendar, CalendarState, Record

DEFAULT_MAX = 250
MAX_RESULTS = 2500
SNAPSHOTS = 32  # cached listings; a page of an evicted one is rebuilt, not refused
HORIZON = timedelta(days=730)  # how far singleEvents expands a series with no timeMax
FORBIDDEN_WITH_SYNC = (
    "iCalUID", "orderBy", "privateExtendedProperty", "q",
    "sharedExtendedProperty", "timeMin", "timeMax", "updatedMin",
)  # fmt: skip

Key = tuple[Any, ...]


@dataclass(frozen=True)
class Query:
    """The parsed parameters of one events.list call."""

    single_events: bool = False
    show_deleted: bool = False
    time_min: datetime | None = None
    time_max: datetime | None = None
    updated_min: datetime | None = None
    order_by: str | None = None
    ical_uid: str | None = None
    q: str | None = None
    private_props: tuple[str, ...] = ()
    shared_props: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    max_results: int = DEFAULT_MAX
    page_token: str | None = None
    sync_token: str | None = None

    def shape(self) -> str:
        """The query minus paging fields: which listing a page token belongs to."""
        fields = asdict(self)
        for name in ("max_results", "page_token", "sync_token"):
            fields.pop(name)
        return json.dumps(fields, default=str, sort_keys=True)

    def filtered(self) -> bool:
        """Whether any non-time filter applies (most listings have none)."""
        props = self.private_props or self.shared_props or self.event_types
        return bool(self.updated_min or self.ical_uid or self.q or props)

    def mints_sync_token(self) -> bool:
        """Google gives no nextSyncToken after a filtered or ordered listing."""
        return not (self.order_by or self.q or self.ical_uid or self.updated_min)


@dataclass
class Snapshot:
    """A frozen, sorted listing."""

    keys: list[Key]
    records: list[Record]
    tombstones_minimal: bool


@dataclass
class Page:
    """One page of results."""

    records: list[Record]
    minimal: bool
    next_page_token: str | None
    next_sync_token: str | None


def encode(data: dict[str, Any]) -> str:
    """An opaque token."""
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()


def decode(token: str, kind: str) -> dict[str, Any]:
    """A token's content, or 400 invalid."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise GoogleError("invalid", f"Invalid {kind} value.", location=kind) from exc
    if not isinstance(data, dict) or data.get("t") != kind:
        raise GoogleError("invalid", f"Invalid {kind} value.", location=kind)
    return data


def check(query: Query, given: Iterable[str]) -> None:
    """Reject the combinations Google refuses."""
    if query.sync_token is not None:
        clash = [name for name in FORBIDDEN_WITH_SYNC if name in given]
        if clash:
            raise GoogleError("invalid", f"Sync token cannot be used with {clash[0]}.", location=clash[0])
    if query.order_by == "startTime" and not query.single_events:
        raise GoogleError(
            "badRequest",
            "The requested ordering is not available for the particular query.",
            location="orderBy",
        )
    if query.time_min and query.time_max and query.time_min >= query.time_max:
        raise GoogleError("timeRangeEmpty", location="timeMax")


class Lister:
    """Answers events.list over a CalendarState, caching snapshots."""

    def __init__(self, state: CalendarState) -> None:
        self.state = state
        self.cache: OrderedDict[tuple[str, str, int, int | None], Snapshot] = OrderedDict()

    def page(self, cal: Calendar, query: Query) -> Page:
        """One page of events.list."""
        since = self.sync_start(cal, query)
        if query.page_token:
            token = decode(query.page_token, "pageToken")
            mint, since, after = token["m"], token.get("s"), tuple(token["k"])
        else:
            mint, after = self.state.seq, None
        snapshot = self.snapshot(cal, query, mint, since)
        start = 0 if after is None else bisect.bisect_right(snapshot.keys, after)
        size = min(query.max_results, MAX_RESULTS)
        chunk = snapshot.records[start : start + size]
        if start + size < len(snapshot.records):
            key = list(snapshot.keys[start + size - 1])
            data = {"t": "pageToken", "m": mint, "s": since, "k": key}
            return Page(chunk, snapshot.tombstones_minimal, encode(data), None)
        sync = encode({"t": "syncToken", "c": cal.id, "m": mint})
        return Page(chunk, snapshot.tombstones_minimal, None, sync if query.mints_sync_token() else None)

    def sync_start(self, cal: Calendar, query: Query) -> int | None:
        """The sequence a sync token was minted at; 410 if it was invalidated."""
        if query.sync_token is None:
            return None
        data = decode(query.sync_token, "syncToken")
        if data.get("c") != cal.id or data["m"] < cal.valid_from:
            raise GoogleError("fullSyncRequired", location="syncToken")
        return int(data["m"])

    def snapshot(self, cal: Calendar, query: Query, mint: int, since: int | None) -> Snapshot:
        """The cached sorted listing for (calendar, query, mint, since), built on a miss."""
        key = (cal.id, query.shape(), mint, since)
        found = self.cache.get(key)
        if found is not None:
            self.cache.move_to_end(key)
            return found
        snapshot = self.build(cal, query, mint, since)
        self.cache[key] = snapshot
        if len(self.cache) > SNAPSHOTS:
            self.cache.popitem(last=False)
        return snapshot

    def build(self, cal: Calendar, query: Query, mint: int, since: int | None) -> Snapshot:
        """Filter, expand and sort the calendar's events."""
        changes = since is not None or query.updated_min is not None
        if since is not None:
            candidates = [cal.events[i] for i in cal.changed_since(since, mint)]
        else:
            candidates = list(cal.events.values())
        items = list(self.items(cal, query, candidates, changes))
        pairs = sorted(((sort_key(r, query), r) for r in items), key=lambda p: p[0])
        return Snapshot([p[0] for p in pairs], [p[1] for p in pairs], not query.show_deleted)

    def items(self, cal: Calendar, query: Query, candidates: list[Record], changes: bool) -> Iterable[Record]:
        """Candidates after filtering and (with singleEvents) series expansion."""
        ids = {r.id for r in candidates} if query.single_events else set()
        filtered = query.filtered()
        for record in candidates:
            if filtered and not matches(record, query):
                continue
            if query.single_events and record.recurring:
                yield from self.instances(cal, record, query, changes)
            elif query.single_events and record.body.get("recurringEventId") in ids:
                continue  # its master's expansion already placed it
            elif in_window(record, query) and visible(record, query, changes):
                yield record

    def instances(self, cal: Calendar, master: Record, query: Query, changes: bool) -> Iterable[Record]:
        """A series' instances in the window, exceptions in place of the originals."""
        if master.cancelled and not changes:
            return
        end = query.time_max or (self.state.clock() + HORIZON)
        found = {r.id: r for r in series.expand(master, cal.zone, query.time_min, end)}
        for child_id in cal.children.get(master.id, ()):
            found[child_id] = cal.events[child_id]
        for record in found.values():
            if master.cancelled and not record.cancelled:
                record = cancelled_copy(record)
            if visible(record, query, changes) and in_window(record, query):
                yield record


def cancelled_copy(record: Record) -> Record:
    """An instance of a deleted series, as the cancelled item a sync reports."""
    body = {**record.body, "status": "cancelled"}
    return Record(body, record.seq, record.ordinal, record.span)


def visible(record: Record, query: Query, changes: bool) -> bool:
    """Cancelled items show with showDeleted, in change feeds, or as exceptions of live series."""
    if not record.cancelled or query.show_deleted or changes:
        return True
    return not query.single_events and bool(record.body.get("recurringEventId"))


def in_window(record: Record, query: Query) -> bool:
    """Google's overlap rule: end > timeMin and start < timeMax (series: any instance)."""
    start, end = record.span.start, record.span.end
    if record.recurring:
        end = datetime.max.replace(tzinfo=UTC)  # refined by expansion where it matters
    if query.time_min is not None and end <= query.time_min:
        return False
    return query.time_max is None or start < query.time_max


def matches(record: Record, query: Query) -> bool:
    """The non-time filters: updatedMin, iCalUID, q, extended properties, eventTypes."""
    body = record.body
    updated_min = query.updated_min
    if updated_min is not None and datetime.fromisoformat(body["updated"]) < updated_min:
        return False
    if query.ical_uid is not None and body.get("iCalUID") != query.ical_uid:
        return False
    if query.event_types and body.get("eventType", "default") not in query.event_types:
        return False
    if query.q and not text_matches(body, query.q):
        return False
    props = body.get("extendedProperties", {})
    return props_match(props.get("private", {}), query.private_props) and props_match(
        props.get("shared", {}), query.shared_props
    )


def text_matches(body: dict[str, Any], q: str) -> bool:
    """Free-text search over summary, description, location and attendees."""
    words = [body.get("summary", ""), body.get("description", ""), body.get("location", "")]
    words += [a.get("email", "") for a in body.get("attendees", [])]
    haystack = " ".join(words).lower()
    return all(term in haystack for term in q.lower().split())


def props_match(values: dict[str, str], constraints: tuple[str, ...]) -> bool:
    """All `name=value` constraints hold (the discovery document's reading)."""
    for constraint in constraints:
        name, _, value = constraint.partition("=")
        if values.get(name) != value:
            return False
    return True


def sort_key(record: Record, query: Query) -> Key:
    """startTime: by start; updated: by updated; default: creation order, then start."""
    if query.order_by == "startTime":
        return (record.start_ts, record.id)
    if query.order_by == "updated":
        return (record.body["updated"], record.seq)  # seq breaks ties within one millisecond
    return (record.ordinal, record.start_ts, record.id)
