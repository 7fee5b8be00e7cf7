"""Typed values and Protocols shared by the provider clients and the jobs that use them.

Jobs depend on these types only: they never see provider JSON, status codes or tokens.
Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol

import msgspec

ShowAs = Literal["busy", "free", "tentative", "oof", "working_elsewhere", "unknown"]
Response = Literal["accepted", "declined", "tentative", "needs_action"]
EventStatus = Literal["confirmed", "tentative", "cancelled"]


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open UTC-aware range [start, end) of time that a sync covers."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError("window end must be after its start")


@dataclass(frozen=True, slots=True)
class CalendarInfo:
    """One calendar the connected account can see."""

    id: str
    name: str
    primary: bool
    access_role: str  # Google's accessRole; Graph: "owner" when canEdit else "reader"
    can_write: bool


# Built once per event on the sync path: a msgspec Struct is built in C, four times faster
# than a dataclass given the same keywords (bench/ingest).
class ProviderEvent(msgspec.Struct, frozen=True):
    """A provider event in provider-neutral terms (one instance of a recurring series).

    `start`/`end` are aware datetimes for timed events and `date`s (end exclusive) for
    all-day events; both are None for removed events, whose other fields may be unknown.
    """

    id: str
    series_id: str | None = None
    removed: bool = False
    status: EventStatus = "confirmed"
    start: datetime | date | None = None
    end: datetime | date | None = None
    all_day: bool = False
    time_zone: str | None = None
    show_as: ShowAs = "busy"
    self_response: Response | None = None
    appointment_tag: str | None = None
    etag: str | None = None
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class Quarantined:
    """An event that could not be parsed; kept raw, and blocking `bounds` when known."""

    id: str
    reason: str
    raw: Mapping[str, Any]
    bounds: tuple[datetime, datetime] | None = None


@dataclass(frozen=True, slots=True)
class ChangePage:
    """One page of changes; `next_cursor` is set on the last page of a round only."""

    events: tuple[ProviderEvent, ...]
    quarantined: tuple[Quarantined, ...] = ()
    next_cursor: str | None = None
    full_sync: bool = False


@dataclass(frozen=True, slots=True)
class WrittenEvent:
    """Where an appointment landed: the provider event id and its version."""

    id: str
    etag: str | None


@dataclass(frozen=True, slots=True)
class Channel:
    """A Google push channel."""

    id: str
    resource_id: str
    expires_at: datetime | None
    token: str | None


@dataclass(frozen=True, slots=True)
class Subscription:
    """A Microsoft Graph change-notification subscription."""

    id: str
    expires_at: datetime
    client_state: str | None


@dataclass(frozen=True, slots=True)
class AppointmentBody:
    """What calsync writes for one appointment; `time_zone` is the resource's IANA zone."""

    appointment_id: str
    title: str
    start: datetime
    end: datetime
    time_zone: str
    description: str | None = None
    location: str | None = None
    attendees: tuple[str, ...] = field(default=())


class CalendarClient(Protocol):
    """What the sync and write jobs need from a provider, whichever it is."""

    async def list_calendars(self) -> list[CalendarInfo]:
        """Every calendar the account can see."""
        ...

    def list_changes(self, calendar_id: str, cursor: str | None, window: Window) -> AsyncIterator[ChangePage]:
        """Full sync over `window` when `cursor` is None, else the changes since `cursor`."""
        ...

    async def get_event(self, calendar_id: str, event_id: str) -> ProviderEvent:
        """One event by id (NotFoundError when absent)."""
        ...

    async def create_event(self, calendar_id: str, body: AppointmentBody) -> WrittenEvent:
        """Create the appointment's event; repeating the call never makes a second one."""
        ...

    async def patch_event(
        self, calendar_id: str, event_id: str, body: AppointmentBody, *, etag: str | None = None
    ) -> WrittenEvent:
        """Move or retitle an event we wrote (PreconditionFailedError when `etag` is stale)."""
        ...

    async def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete an event; an event already gone counts as success."""
        ...


class RequestBudget(Protocol):
    """Cross-process request limiter that providers/http.py consults around every request."""

    def slot(self, key: str, *, interactive: bool) -> AbstractAsyncContextManager[None]:
        """Hold one request's place in `key`'s budget (interactive work goes first)."""
        ...

    async def penalise(self, key: str, seconds: float) -> None:
        """Stop issuing requests for `key` for `seconds` (the provider throttled us)."""
        ...


class NoBudget:
    """The default RequestBudget: no limits."""

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        yield

    def slot(self, key: str, *, interactive: bool) -> AbstractAsyncContextManager[None]:
        """An always-free slot."""
        return self._slot()

    async def penalise(self, key: str, seconds: float) -> None:
        """Ignore throttling feedback."""


class RequestObserver(Protocol):
    """Counts what providers/http.py and tokens.py see, so the worker can export metrics."""

    def response(self, provider: str, status: str) -> None:
        """One HTTP exchange ended: a status number, or "error" when no response came."""
        ...

    def retry(self, provider: str, reason: str) -> None:
        """The retry policy is about to sleep and try again."""
        ...

    def token_refresh(self, provider: str, outcome: str) -> None:
        """An access-token refresh ended: ok, invalid_grant or error."""
        ...


class NoObserver:
    """The default RequestObserver: counts nothing."""

    def response(self, provider: str, status: str) -> None:
        """Ignore."""

    def retry(self, provider: str, reason: str) -> None:
        """Ignore."""

    def token_refresh(self, provider: str, outcome: str) -> None:
        """Ignore."""
