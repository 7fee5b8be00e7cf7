"""Graph calendar semantics for the sandbox: mailboxes, calendars, events, the change log, delta.

No HTTP here. Every write appends (sequence, event id, replaced version) to the mailbox's
change log; a delta token is a window plus a sequence position, so replaying it costs
only the changes since. https://learn.microsoft.com/graph/delta-query-events
"""

from __future__ import annotations

import base64
import bisect
import itertools
import json
import secrets
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from providers.sandbox.microsoft import events as ev
from providers.sandbox.microsoft.errors import GraphError

# Delta rounds stay pageable by $skiptoken until evicted, oldest first, like Graph's token
# cache; the item budget bounds memory when many large initial rounds pile up.
ROUNDS_KEPT = 2000
ROUND_ITEMS_KEPT = 2_000_000
VIEWS_KEPT = 16  # calendarView results cached for $skip paging while nothing changes


def _not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


@dataclass
class Calendar:
    """One calendar of a mailbox and the events in it."""

    id: str
    name: str
    is_default: bool
    change_key: str = field(default_factory=ev.new_change_key)
    events: dict[str, ev.StoredEvent] = field(default_factory=dict)


@dataclass
class Mailbox:
    """A user: identity, calendars, transaction ids and the change log."""

    id: str
    email: str
    display_name: str
    calendars: dict[str, Calendar] = field(default_factory=dict)
    default_calendar_id: str = ""
    event_calendar: dict[str, str] = field(default_factory=dict)  # event id -> calendar id
    by_transaction: dict[str, str] = field(default_factory=dict)  # transactionId -> event id
    change_seqs: list[int] = field(default_factory=list)
    changes: list[tuple[str, str, ev.StoredEvent | None]] = field(default_factory=list)  # (event id, calendar id, old)
    generation: int = 1  # bumped when delta tokens are invalidated
    last_seq: int = 0


@dataclass(frozen=True)
class Removed:
    """A delta entry for an item that left the view."""

    id: str


@dataclass
class Round:
    """One delta round: the items to page through and where the chain continues."""

    user_id: str
    calendar_id: str
    start: datetime
    end: datetime
    seq: int
    generation: int
    items: list[ev.Instance | Removed]


@dataclass(frozen=True)
class DeltaCursor:
    """What a $deltatoken encodes."""

    user_id: str
    calendar_id: str
    start: datetime
    end: datetime
    seq: int
    generation: int


def encode_token(payload: dict[str, Any]) -> str:
    """An opaque URL-safe token."""
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any]:
    """Inverse of encode_token; a bad token is Graph's sync-state error."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError as exc:
        raise sync_state_error(0) from exc
    if not isinstance(data, dict):
        raise sync_state_error(0)
    return data


def sync_state_error(generation: int) -> GraphError:
    """Graph's answer to an evicted or invalidated delta token."""
    return GraphError(
        410,
        "SyncStateNotFound",
        f"The sync state generation is not found; generation={generation};",
    )


class GraphState:
    """All mailboxes of the Microsoft half."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.mailboxes: dict[str, Mailbox] = {}  # by lower-cased email
        self.by_id: dict[str, Mailbox] = {}
        self._seq = itertools.count(1)
        self.rounds: OrderedDict[str, Round] = OrderedDict()
        self.round_items = 0
        self.views: OrderedDict[tuple[Any, ...], list[ev.Instance]] = OrderedDict()

    def reset(self) -> None:
        """Forget every mailbox."""
        self.mailboxes.clear()
        self.by_id.clear()
        self.rounds.clear()
        self.round_items = 0
        self.views.clear()

    # -- mailboxes and calendars -------------------------------------------------

    def create_mailbox(self, email: str) -> Mailbox:
        """A user with the default calendar "Calendar" (idempotent per email)."""
        key = email.lower()
        if key in self.mailboxes:
            return self.mailboxes[key]
        name = email.split("@", 1)[0].replace(".", " ").title()
        box = Mailbox(id=str(uuid.uuid4()), email=email, display_name=name)
        self.mailboxes[key] = box
        self.by_id[box.id] = box
        calendar = self.add_calendar(box, "Calendar")
        box.default_calendar_id = calendar.id
        return box

    def mailbox(self, email: str) -> Mailbox:
        """The mailbox for an email (control surface); unknown is a KeyError."""
        return self.mailboxes[email.lower()]

    def add_calendar(self, box: Mailbox, name: str) -> Calendar:
        """Another calendar in a mailbox."""
        calendar = Calendar(id="AAMkCal" + secrets.token_urlsafe(30), name=name, is_default=not box.calendars)
        box.calendars[calendar.id] = calendar
        return calendar

    def calendar(self, box: Mailbox, calendar_id: str | None) -> Calendar:
        """A calendar by id, or the default one for None."""
        found = box.calendars.get(calendar_id or box.default_calendar_id)
        if found is None:
            raise _not_found()
        return found

    # -- writes ------------------------------------------------------------------

    def _log(self, box: Mailbox, event_id: str, calendar_id: str, old: ev.StoredEvent | None) -> None:
        seq = next(self._seq)
        box.change_seqs.append(seq)
        box.changes.append((event_id, calendar_id, old))
        box.last_seq = seq

    def _store(self, box: Mailbox, event: ev.StoredEvent, old: ev.StoredEvent | None) -> None:
        box.calendars[event.calendar_id].events[event.id] = event
        box.event_calendar[event.id] = event.calendar_id
        self._log(box, event.id, event.calendar_id, old)

    def create_event(self, box: Mailbox, calendar: Calendar, body: dict[str, Any]) -> tuple[ev.StoredEvent, bool]:
        """Create an event; a repeated transactionId returns the first one (created=False)."""
        txn = body.get("transactionId")
        if txn and txn in box.by_transaction:
            existing = self.find_event(box, box.by_transaction[txn])
            if existing is not None:
                return existing, False
        event = ev.build(body, calendar_id=calendar.id, now=self.clock())
        self._store(box, event, None)
        if txn:
            box.by_transaction[txn] = event.id
        return event, True

    def bulk_create(self, box: Mailbox, calendar: Calendar, bodies: Iterable[dict[str, Any]]) -> list[ev.StoredEvent]:
        """Create many events at once (the control surface's fast path)."""
        now = self.clock()
        created = [ev.build(body, calendar_id=calendar.id, now=now) for body in bodies]
        for event in created:
            self._store(box, event, None)
            if event.transaction_id:
                box.by_transaction[event.transaction_id] = event.id
        return created

    def find_event(self, box: Mailbox, event_id: str) -> ev.StoredEvent | None:
        """A stored single event or master by id."""
        calendar_id = box.event_calendar.get(event_id)
        return None if calendar_id is None else box.calendars[calendar_id].events.get(event_id)

    def get_instance(self, box: Mailbox, event_id: str, calendar_id: str | None = None) -> ev.Instance:
        """An event, master, occurrence or exception by id (404 if missing)."""
        found = self._resolve(box, event_id)
        if calendar_id is not None and found.event.calendar_id != calendar_id:
            raise _not_found()
        return found

    def _resolve(self, box: Mailbox, event_id: str) -> ev.Instance:
        event = self.find_event(box, event_id)
        if event is not None:
            return ev.master_instance(event)
        parts = ev.split_occurrence_id(event_id)
        master = self.find_event(box, parts[0]) if parts else None
        instance = ev.instance_at(master, parts[1]) if master and parts else None
        if instance is None:
            raise _not_found()
        return instance

    def patch_event(
        self, box: Mailbox, event_id: str, patch: dict[str, Any], if_match: str | None = None
    ) -> ev.Instance:
        """Apply a PATCH to an event, master, occurrence or exception."""
        target = self._resolve(box, event_id)
        check_if_match(target, if_match)
        master = target.event
        now = self.clock()
        if target.original_start is None:
            updated = ev.patched(master, patch, now)
        else:
            updated = ev.with_exception(master, target.original_start, patch, now)
        self._store(box, updated, master)
        return self._resolve(box, event_id) if target.original_start else ev.master_instance(updated)

    def delete_event(self, box: Mailbox, event_id: str, if_match: str | None = None) -> ev.StoredEvent:
        """Delete an event or series, or cancel one occurrence; returns the replaced record."""
        target = self._resolve(box, event_id)
        check_if_match(target, if_match)
        master = target.event
        if target.original_start is not None:
            self._store(box, ev.without_occurrence(master, target.original_start, self.clock()), master)
            return master
        del box.calendars[master.calendar_id].events[master.id]
        box.event_calendar.pop(master.id, None)
        if master.transaction_id:
            box.by_transaction.pop(master.transaction_id, None)
        self._log(box, master.id, master.calendar_id, master)
        return master

    # -- reads -------------------------------------------------------------------

    def list_events(self, calendar: Calendar) -> list[ev.StoredEvent]:
        """Singles and series masters (what /events lists), in creation order."""
        return list(calendar.events.values())

    def calendar_view(self, box: Mailbox, calendar: Calendar, start: datetime, end: datetime) -> list[ev.Instance]:
        """Singles, occurrences and exceptions overlapping [start, end), ordered by start.

        Cached until the mailbox changes, so $skip paging over a large view stays cheap.
        """
        key = (box.id, calendar.id, start, end, box.last_seq, box.generation)
        cached = self.views.get(key)
        if cached is not None:
            self.views.move_to_end(key)
            return cached
        found = [inst for event in calendar.events.values() for inst in ev.instances(event, start, end)]
        found.sort(key=lambda inst: (inst.start, inst.id))
        self.views[key] = found
        if len(self.views) > VIEWS_KEPT:
            self.views.popitem(last=False)
        return found

    # -- delta -------------------------------------------------------------------

    def start_round(self, box: Mailbox, calendar: Calendar, start: datetime, end: datetime) -> str:
        """An initial delta round over a window; returns its round id."""
        items: list[ev.Instance | Removed] = list(self.calendar_view(box, calendar, start, end))
        return self._keep_round(Round(box.id, calendar.id, start, end, box.last_seq, box.generation, items))

    def replay(self, box: Mailbox, cursor: DeltaCursor) -> str:
        """A round holding only what changed in the cursor's window since its position."""
        if cursor.generation != box.generation or cursor.user_id != box.id:
            raise sync_state_error(cursor.generation)
        calendar = self.calendar(box, cursor.calendar_id)
        items: list[ev.Instance | Removed] = []
        for event_id, old in self._changed_since(box, cursor).items():
            current = calendar.events.get(event_id)
            items.extend(_delta_items(event_id, old, current, cursor.start, cursor.end))
        return self._keep_round(
            Round(box.id, calendar.id, cursor.start, cursor.end, box.last_seq, box.generation, items)
        )

    def _changed_since(self, box: Mailbox, cursor: DeltaCursor) -> dict[str, ev.StoredEvent | None]:
        """Event id -> its version as of the cursor (None if created since), in change order."""
        first: dict[str, ev.StoredEvent | None] = {}
        begin = bisect.bisect_right(box.change_seqs, cursor.seq)
        for event_id, calendar_id, old in box.changes[begin:]:
            if calendar_id == cursor.calendar_id and event_id not in first:
                first[event_id] = old
        return first

    def _keep_round(self, rnd: Round) -> str:
        round_id = secrets.token_urlsafe(12)
        self.rounds[round_id] = rnd
        self.round_items += len(rnd.items)
        while len(self.rounds) > 1 and (len(self.rounds) > ROUNDS_KEPT or self.round_items > ROUND_ITEMS_KEPT):
            _, evicted = self.rounds.popitem(last=False)
            self.round_items -= len(evicted.items)
        return round_id

    def round(self, round_id: str, box: Mailbox) -> Round:
        """A kept round (410 SyncStateNotFound once evicted or invalidated)."""
        rnd = self.rounds.get(round_id)
        if rnd is None or rnd.user_id != box.id or rnd.generation != box.generation:
            raise sync_state_error(box.generation)
        return rnd

    def invalidate_cursors(self, box: Mailbox) -> None:
        """Make every delta and skip token of the mailbox fail with SyncStateNotFound."""
        box.generation += 1


def check_if_match(target: ev.Instance, if_match: str | None) -> None:
    """412 ErrorIrresolvableConflict when If-Match names another version."""
    if if_match is None or if_match.strip() == "*":
        return
    wanted = if_match.strip().removeprefix("W/").strip('"')
    if wanted != target.change_key:
        raise GraphError(412, "ErrorIrresolvableConflict")


def _delta_items(
    event_id: str,
    old: ev.StoredEvent | None,
    current: ev.StoredEvent | None,
    start: datetime,
    end: datetime,
) -> list[ev.Instance | Removed]:
    """What one changed event contributes to a replayed round."""
    now_in = ev.instances(current, start, end) if current else []
    before = {inst.id for inst in ev.instances(old, start, end)} if old else set()
    gone = before - {inst.id for inst in now_in}
    items: list[ev.Instance | Removed] = [*now_in, *(Removed(i) for i in sorted(gone))]
    if not items:
        # Graph's documented quirk: a change outside the window still yields @removed.
        items.append(Removed(event_id))
    return items


def cursor_from_token(token: str) -> DeltaCursor:
    """Decode a $deltatoken."""
    data = decode_token(token)
    try:
        return DeltaCursor(
            user_id=str(data["u"]),
            calendar_id=str(data["c"]),
            start=datetime.fromtimestamp(float(data["s"]), UTC),
            end=datetime.fromtimestamp(float(data["e"]), UTC),
            seq=int(data["q"]),
            generation=int(data["g"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise sync_state_error(0) from exc


def token_for(rnd: Round) -> str:
    """The $deltatoken that continues after a round."""
    return encode_token(
        {
            "u": rnd.user_id,
            "c": rnd.calendar_id,
            "s": rnd.start.timestamp(),
            "e": rnd.end.timestamp(),
            "q": rnd.seq,
            "g": rnd.generation,
        }
    )
