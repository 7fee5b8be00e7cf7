"""Turning listed provider items into typed pages: shared by the Google and Graph clients.

Listing pages arrive as raw JSON per item (see the wire modules): each item is decoded into
its provider's msgspec struct and read by that provider's mapping. An item that does not fit
is quarantined with its JSON as it came, never fatal to its page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
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


def change_page(items: Iterable[Any], next_cursor: str | None, full: bool, parse: Parser) -> ChangePage:
    """A page of parsed events; what cannot be parsed is quarantined, never fatal."""
    events: list[ProviderEvent] = []
    quarantined: list[Quarantined] = []
    for raw in items:
        parsed = parse(raw)
        if isinstance(parsed, ProviderEvent):
            events.append(parsed)
        else:
            quarantined.append(parsed)
    return ChangePage(tuple(events), tuple(quarantined), next_cursor, full)


def single_event(raw: Any, parse: Parser) -> ProviderEvent:
    """One event the caller asked for by id: unreadable is an error, not a quarantine."""
    parsed = parse(raw)
    if isinstance(parsed, Quarantined):
        raise errors.MalformedResponseError(f"unreadable event: {parsed.reason}")
    return parsed
