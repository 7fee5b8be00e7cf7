"""Google Calendar semantics without HTTP: users, calendars, events, changes, channels.

Every write gets a number from one rising sequence and is appended to its calendar's
change log (`log_seqs`/`log_ids`, parallel lists for bisect), so a sync token is just
"the sequence at mint time" and an incremental listing reads the log tail instead of
scanning every event. Stored bodies are replaced, never mutated, on writes, so a listing
snapshot taken earlier keeps seeing the state it was taken from.
See https://developers.google.com/workspace/calendar/api/guides/sync
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from providers.sandbox.context import SandboxSettings
from providers.sandbox.google import events as ev
from providers.sandbox.google.errors import GoogleError
from providers.sandbox.google.series import instance_at, suffix_of

ChangeHook = Callable[["Calendar"], None]


@dataclass
class Record:
    """One stored event (series masters, exceptions and single events alike)."""

    body: dict[str, Any]
    seq: int
    ordinal: int
    span: ev.Span
    start_ts: int = field(init=False)  # epoch seconds: a cheap sort key

    def __post_init__(self) -> None:
        self.start_ts = int(self.span.start.timestamp())

    @property
    def id(self) -> str:
        return str(self.body["id"])

    @property
    def cancelled(self) -> bool:
        return self.body.get("status") == "cancelled"

    @property
    def recurring(self) -> bool:
        return bool(self.body.get("recurrence"))


@dataclass
class Channel:
    """A watch channel on one calendar's events."""

    id: str
    resource_id: str
    resource_uri: str
    address: str
    token: str | None
    expiration: datetime
    calendar_id: str
    number: int = 1
    stopped: bool = False


@dataclass
class Calendar:
    """One calendar with its events and change log."""

    id: str
    owner: str
    summary: str
    primary: bool
    time_zone: str = "UTC"
    resource_id: str = field(default_factory=lambda: secrets.token_urlsafe(20))
    seq: int = 0
    events: dict[str, Record] = field(default_factory=dict)
    children: dict[str, set[str]] = field(default_factory=dict)  # master id → exception ids
    log_seqs: list[int] = field(default_factory=list)
    log_ids: list[str] = field(default_factory=list)
    valid_from: int = 0  # sync tokens minted before this sequence get 410

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def changed_since(self, after: int, upto: int) -> list[str]:
        """Ids of events changed in (after, upto], each once, oldest change first."""
        lo = bisect.bisect_right(self.log_seqs, after)
        hi = bisect.bisect_right(self.log_seqs, upto)
        return list(dict.fromkeys(self.log_ids[lo:hi]))


@dataclass
class User:
    """A sandbox Google account."""

    email: str
    id: str
    calendars: list[str]


class CalendarState:
    """All Calendar API state of the Google half."""

    def __init__(self, settings: SandboxSettings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.clock = clock
        self.on_change: ChangeHook = lambda cal: None
        self.reset()

    def reset(self) -> None:
        """Forget users, calendars, events and channels."""
        self.users: dict[str, User] = {}
        self.calendars: dict[str, Calendar] = {}
        self.channels: dict[str, Channel] = {}
        self._seq = itertools.count(1)
        self.seq = 0
        self._ordinal = itertools.count(1)

    def next_seq(self) -> int:
        """The next number of the global change sequence."""
        self.seq = next(self._seq)
        return self.seq

    # users and calendars

    def create_user(self, email: str) -> User:
        """A user with a primary calendar whose id is the email (idempotent)."""
        if email in self.users:
            return self.users[email]
        user = User(email, str(int(hashlib.sha256(email.encode()).hexdigest()[:16], 16)), [])
        self.users[email] = user
        self._add_calendar(user, email, email, primary=True)
        return user

    def add_calendar(self, email: str, name: str) -> Calendar:
        """A secondary calendar for an existing user."""
        user = self.user(email)
        cal_id = f"{secrets.token_hex(16)}@group.calendar.google.com"
        return self._add_calendar(user, cal_id, name, primary=False)

    def _add_calendar(self, user: User, cal_id: str, name: str, *, primary: bool) -> Calendar:
        cal = Calendar(cal_id, user.email, name, primary, seq=self.next_seq())
        self.calendars[cal_id] = cal
        user.calendars.append(cal_id)
        return cal

    def user(self, email: str) -> User:
        """The user, or KeyError."""
        if email not in self.users:
            raise KeyError(f"google user {email}")
        return self.users[email]

    def calendar_for(self, email: str, calendar_id: str | None) -> Calendar:
        """A calendar the user owns (`primary`/None = the primary one), or 404."""
        user = self.users.get(email)
        if user is None:
            raise GoogleError("notFound")
        if calendar_id in (None, "primary"):
            return self.calendars[user.calendars[0]]
        if calendar_id not in user.calendars:
            raise GoogleError("notFound")
        return self.calendars[str(calendar_id)]

    # reads

    def get(self, cal: Calendar, event_id: str) -> dict[str, Any]:
        """An event or instance body (cancelled ones too), or 404."""
        record = cal.events.get(event_id)
        if record is not None:
            return record.body
        return self.virtual_instance(cal, event_id).body

    def virtual_instance(self, cal: Calendar, event_id: str) -> Record:
        """An unmodified instance of a series, generated on demand, or 404."""
        parts = ev.split_instance_id(event_id)
        master = cal.events.get(parts[0]) if parts else None
        if parts is None or master is None or not master.recurring:
            raise GoogleError("notFound")
        found = instance_at(master, parts[1], cal.zone)
        if found is None:
            raise GoogleError("notFound")
        return found

    # writes

    def insert(self, cal: Calendar, body: dict[str, Any]) -> dict[str, Any]:
        """events.insert: validate, store, log; 409 for a taken id."""
        event = ev.clean(body)
        event_id = ev.check_id(event["id"]) if "id" in event else ev.new_id()
        if event_id in cal.events:
            raise GoogleError("duplicate")
        event["id"] = event_id
        span = ev.normalize_times(event, cal.zone)
        now = ev.timestamp(self.clock())
        event = self.decorate(cal, event, created=now)
        self.commit(cal, event, span, ordinal=next(self._ordinal))
        return event

    def decorate(self, cal: Calendar, event: dict[str, Any], *, created: str) -> dict[str, Any]:
        """Fill the server-owned fields of a body about to be stored."""
        event.setdefault("status", "confirmed")
        event.setdefault("iCalUID", f"{event['id']}@google.com")
        event.setdefault("sequence", 0)
        event.setdefault("reminders", {"useDefault": True})
        event.setdefault("eventType", "default")
        if "attendees" in event:
            event["attendees"] = ev.check_attendees(event["attendees"], cal.owner)
        if "extendedProperties" in event:
            event["extendedProperties"] = ev.check_extended(event["extendedProperties"])
        person = {"email": cal.owner, "self": True}
        return {
            "kind": "calendar#event",
            "etag": "",
            "id": event["id"],
            "status": event["status"],
            "htmlLink": f"https://www.google.com/calendar/event?eid={event['id']}",
            "created": created,
            "updated": created,
            "creator": person,
            "organizer": person,
            **event,
        }

    def commit(self, cal: Calendar, event: dict[str, Any], span: ev.Span, ordinal: int) -> Record:
        """Store a new version of an event, log the change and notify watchers."""
        seq = self.next_seq()
        event["etag"] = f'"3{seq:015d}"'
        event["updated"] = ev.timestamp(self.clock())
        record = Record(event, seq, ordinal, span)
        cal.events[record.id] = record
        master = event.get("recurringEventId")
        if master:
            cal.children.setdefault(master, set()).add(record.id)
        cal.log_seqs.append(seq)
        cal.log_ids.append(record.id)
        cal.seq = seq
        self.on_change(cal)
        return record

    def existing(self, cal: Calendar, event_id: str, if_match: str | None) -> Record:
        """The record to change (an instance becomes an exception), checking If-Match."""
        record = cal.events.get(event_id) or self.virtual_instance(cal, event_id)
        if if_match is not None and if_match != "*" and if_match != record.body["etag"]:
            raise GoogleError("conditionNotMet", location="If-Match", location_type="header")
        return record

    def replace(self, cal: Calendar, record: Record, event: dict[str, Any]) -> dict[str, Any]:
        """Store a changed body in place of a record (shared by update and patch)."""
        for fixed in ("id", "recurringEventId", "originalStartTime"):
            if fixed in record.body:
                event[fixed] = record.body[fixed]
        span = ev.normalize_times(event, cal.zone)
        previous = int(record.body.get("sequence", 0))
        if span != record.span and int(event.get("sequence", previous)) <= previous:
            event["sequence"] = previous + 1  # a reschedule is a new iCalendar revision
        created = record.body.get("created") or ev.timestamp(self.clock())
        body = self.decorate(cal, event, created=created)
        self.commit(cal, body, span, record.ordinal)
        return body

    def update(self, cal: Calendar, event_id: str, body: dict[str, Any], if_match: str | None) -> dict[str, Any]:
        """events.update: full replacement (omitted fields are dropped)."""
        record = self.existing(cal, event_id, if_match)
        event = ev.clean(body)
        if "id" in event and event["id"] != record.id:
            raise GoogleError("invalid", "Invalid resource id value.", location="id")
        event["id"] = record.id
        event.setdefault("sequence", record.body.get("sequence", 0))
        return self.replace(cal, record, event)

    def patch(self, cal: Calendar, event_id: str, patch: dict[str, Any], if_match: str | None) -> dict[str, Any]:
        """events.patch: merge; `null` removes a key (extendedProperties entries too)."""
        record = self.existing(cal, event_id, if_match)
        ev.clean({k: v for k, v in patch.items() if v is not None})
        old = {k: v for k, v in record.body.items() if k in ev.WRITABLE}
        event = ev.merge_patch(old, patch)
        return self.replace(cal, record, ev.clean(event))

    def delete(self, cal: Calendar, event_id: str, if_match: str | None) -> None:
        """events.delete: mark cancelled (series cancel their exceptions); 410 if gone."""
        record = self.existing(cal, event_id, if_match)
        if record.cancelled:
            raise GoogleError("deleted")
        self.cancel(cal, record)
        for child in sorted(cal.children.get(record.id, ())):
            exception = cal.events[child]
            if not exception.cancelled:
                self.cancel(cal, exception)

    def cancel(self, cal: Calendar, record: Record) -> None:
        """Store a cancelled version of a record."""
        body = {**record.body, "status": "cancelled"}
        self.commit(cal, body, record.span, record.ordinal)

    def bulk(self, cal: Calendar, bodies: list[dict[str, Any]]) -> int:
        """Insert many events with one notification at the end."""
        hook, self.on_change = self.on_change, lambda c: None
        try:
            for body in bodies:
                self.insert(cal, body)
        finally:
            self.on_change = hook
        hook(cal)
        return len(bodies)

    def invalidate(self, email: str | None) -> None:
        """Make every sync token of the user's (or everyone's) calendars answer 410."""
        seq = self.next_seq()
        for cal in self.calendars.values():
            if email is None or cal.owner == email:
                cal.valid_from = seq

    # channels

    def watch(self, cal: Calendar, spec: dict[str, Any], resource_uri: str) -> Channel:
        """Open a channel; the expiration is capped by settings.channel_max_ttl."""
        channel_id = spec.get("id")
        if not channel_id:
            raise GoogleError("required", "Required", location="id")
        if channel_id in self.channels:
            raise GoogleError("channelIdNotUnique", f"Channel id {channel_id} not unique")
        if spec.get("type", "").lower() not in ("web_hook", "webhook"):
            raise GoogleError("push.channelTypeNotSupported", "Unknown channel type.")
        address = spec.get("address") or ""
        if not address:
            raise GoogleError("push.webhookUrlNoHostOrAddress", "WebHook callback must have an address")
        if not address.startswith("https://") and not self.settings.allow_http_push:
            raise GoogleError("push.webhookUrlNotHttps", "WebHook callback must be HTTPS")
        channel = Channel(
            channel_id, cal.resource_id, resource_uri, address, spec.get("token"),
            self.expiration(spec), cal.id,
        )  # fmt: skip
        self.channels[channel_id] = channel
        return channel

    def expiration(self, spec: dict[str, Any]) -> datetime:
        """The more restrictive of the requested expiration/ttl and the cap."""
        now = self.clock()
        cap = now + timedelta(seconds=self.settings.channel_max_ttl)
        ttl = (spec.get("params") or {}).get("ttl")
        wanted = now + timedelta(seconds=int(ttl)) if ttl else cap
        if spec.get("expiration"):
            wanted = min(wanted, datetime.fromtimestamp(int(spec["expiration"]) / 1000, now.tzinfo))
        return min(wanted, cap)

    def stop(self, channel_id: str | None, resource_id: str | None) -> None:
        """channels.stop; unknown, stopped or mismatched channels are 404."""
        channel = self.channels.get(channel_id or "")
        if channel is None or channel.stopped or channel.resource_id != resource_id:
            raise GoogleError("notFound", f"Channel '{channel_id}' not found for project 'sandbox'")
        channel.stopped = True

    def live_channels(self, cal: Calendar) -> Iterator[Channel]:
        """Channels on the calendar that are neither stopped nor expired."""
        now = self.clock()
        for channel in self.channels.values():
            if channel.calendar_id == cal.id and not channel.stopped and channel.expiration > now:
                yield channel


__all__ = ["Calendar", "CalendarState", "Channel", "Record", "User", "suffix_of"]
