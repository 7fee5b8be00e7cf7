"""Turning listed provider items into typed pages: shared by the Google and Graph clients.

Listing pages arrive as raw JSON per item (see the wire modules): each item is decoded into
its provider's msgspec struct and read by that provider's mapping. An item that does not fit
is quarantined with its JSON as it came, never fatal to its page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from providers import errors
from providers.base import ChangePage, ProviderEvent, Quarantined

# Reads one listed item (raw JSON, or an already decoded value); never raises for bad input.
Parser = Callable[[Any], ProviderEvent | Quarantined]
Bounds = tuple[datetime, datetime]


class _Identified(Protocol):
    @property
    def id(self) -> str | None: ...


E = TypeVar("E", bound=_Identified)


class EventReader(Generic[E]):
    """One provider's event JSON → ProviderEvent: a typed decode into `struct`, then `read`.

    `read` raises ValueError, TypeError, KeyError or AttributeError for an event it cannot
    use; such an event, and one that does not fit `struct`, becomes Quarantined with its
    JSON as it came and whatever `known_bounds` finds in it.
    """

    def __init__(
        self,
        struct: type[E],
        read: Callable[[str, E], ProviderEvent],
        known_bounds: Callable[[Mapping[str, Any]], Bounds | None],
    ):
        self._struct = struct
        self._decoder = msgspec.json.Decoder(struct)
        self._read = read
        self._known_bounds = known_bounds

    def item(self, raw: msgspec.Raw) -> ProviderEvent | Quarantined:
        """One item of a listing page, still raw JSON."""
        try:
            event = self._decoder.decode(raw)
        except msgspec.ValidationError as exc:
            return self._unreadable(msgspec.json.decode(raw), str(exc))
        return self._parse(event, raw)

    def decoded(self, raw: Any) -> ProviderEvent | Quarantined:
        """An event already decoded to plain JSON values (one fetched by id, a test's dict)."""
        try:
            event = msgspec.convert(raw, self._struct)
        except msgspec.ValidationError as exc:
            return self._unreadable(raw, str(exc))
        return self._parse(event, raw)

    def _parse(self, event: E, source: Any) -> ProviderEvent | Quarantined:
        # `source` is decoded to plain JSON only for an event that ends up quarantined.
        if not event.id:
            return Quarantined("", "event has no id", _plain(source))
        try:
            return self._read(event.id, event)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raw = _plain(source)
            return Quarantined(event.id, str(exc) or type(exc).__name__, raw, self._known_bounds(raw))

    def _unreadable(self, raw: Any, reason: str) -> Quarantined:
        if not isinstance(raw, dict):
            return Quarantined("", "item is not an object", {"item": raw})
        event_id = raw.get("id")
        return Quarantined(event_id if isinstance(event_id, str) else "", reason, raw, self._known_bounds(raw))


def _plain(source: Any) -> Any:
    return msgspec.json.decode(source) if isinstance(source, msgspec.Raw) else source


# Items parsed between two yields to the event loop (about half a millisecond of work).
SLICE = 64


def change_page(items: Iterable[Any], next_cursor: str | None, full: bool, parse: Parser) -> ChangePage:
    """A page of parsed events; what cannot be parsed is quarantined, never fatal."""
    events: list[ProviderEvent] = []
    quarantined: list[Quarantined] = []
    _parse_into(items, parse, events, quarantined)
    return ChangePage(tuple(events), tuple(quarantined), next_cursor, full)


async def parse_page(items: Sequence[Any], next_cursor: str | None, full: bool, parse: Parser) -> ChangePage:
    """`change_page`, yielding to the event loop between slices of items: the request for the
    next page (started by `http.read_ahead`) waits on the loop for its budget slot and its
    send, and would otherwise leave only after this page's milliseconds of parsing."""
    events: list[ProviderEvent] = []
    quarantined: list[Quarantined] = []
    for at in range(0, len(items), SLICE):
        await asyncio.sleep(0)
        _parse_into(items[at : at + SLICE], parse, events, quarantined)
    return ChangePage(tuple(events), tuple(quarantined), next_cursor, full)


def _parse_into(items: Iterable[Any], parse: Parser, events: list[ProviderEvent], held: list[Quarantined]) -> None:
    for raw in items:
        parsed = parse(raw)
        if isinstance(parsed, ProviderEvent):
            events.append(parsed)
        else:
            held.append(parsed)


def single_event(raw: Any, parse: Parser) -> ProviderEvent:
    """One event the caller asked for by id: unreadable is an error, not a quarantine."""
    parsed = parse(raw)
    if isinstance(parsed, Quarantined):
        raise errors.MalformedResponseError(f"unreadable event: {parsed.reason}")
    return parsed
