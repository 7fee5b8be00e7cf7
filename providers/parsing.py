"""Turning listed provider items into typed pages: shared by the Google and Graph clients.

A listing page is decoded in one pass, every item into its provider's msgspec struct, and
each is read by that provider's mapping. A page with an item that does not fit the struct, or
that the mapping cannot read, is decoded again with its items left raw JSON and read item by
item: what cannot be read is quarantined with its JSON as it came, never fatal to its page.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from providers import errors
from providers.base import ChangePage, ProviderEvent, Quarantined

# Reads one listed item (raw JSON, or an already decoded value); never raises for bad input.
Parser = Callable[[Any], ProviderEvent | Quarantined]
Bounds = tuple[datetime, datetime]


P = TypeVar("P", bound=msgspec.Struct)


class DecodedItems(list[Any]):
    """A page's items, every one decoded into its provider's event struct in the same pass as
    the page (the usual page); `raw()` decodes the page again with each item left raw JSON, for
    a page with an item that cannot be read (so it is quarantined as it came)."""

    def __init__(self, items: Sequence[Any], raw: Callable[[], Sequence[Any]]):
        super().__init__(items)
        self.raw = raw


class ListingDecoder(Generic[P]):
    """A listing page's bytes → its struct, `page[event]`, in one pass: its items are then
    `DecodedItems`. A page with an item that does not fit `event` is decoded as `page[Raw]`
    instead, each item left raw for `EventReader.item` (one pass is a third cheaper than a
    page of raw items, each decoded on its own, and it is the usual page).

    msgspec refuses a lone UTF-16 surrogate escape ("\\ud83d", a subject cut mid-emoji),
    which the JSON module and the providers accept: such a page is read by the JSON module
    instead, its items as plain values, so one odd string never fails its whole calendar.
    """

    def __init__(self, page: Any, event: type[msgspec.Struct], items: str):
        self._typed = msgspec.json.Decoder(page[event])
        self._raw_page: type[P] = page[msgspec.Raw]
        self._raw = msgspec.json.Decoder(self._raw_page)
        self._items = items

    def __call__(self, raw: bytes) -> P:
        try:
            page: P = self._typed.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return self._raw_items(raw)
        items = getattr(page, self._items)
        if items is not None:
            setattr(page, self._items, DecodedItems(items, lambda: getattr(self._raw_items(raw), self._items) or ()))
        return page

    def _raw_items(self, raw: bytes) -> P:
        try:
            return self._raw.decode(raw)
        except msgspec.ValidationError:
            raise  # the envelope has the wrong shape: a malformed answer
        except msgspec.DecodeError:
            body = json.loads(raw)  # still unreadable: ValueError, a malformed answer
        if not isinstance(body, dict):
            raise ValueError("a listing page is not a JSON object")
        items = body.pop(self._items, None)
        page = msgspec.convert(body, self._raw_page)
        setattr(page, self._items, items)
        return page


class _Identified(Protocol):
    @property
    def id(self) -> str | None: ...


E = TypeVar("E", bound=_Identified)


class EventReader(Generic[E]):
    """One provider's event JSON → ProviderEvent: a typed decode into `struct`, then `read`.

    `read` raises ValueError, TypeError, KeyError or AttributeError for an event it cannot
    use; such an event, and one that does not fit `struct`, becomes Quarantined with its
    JSON as it came and whatever `known_bounds` finds in it; unless it has no id (then it
    blocks nothing), or `tombstone` reads it as a removal (then it is one).
    """

    def __init__(
        self,
        struct: type[E],
        read: Callable[[str, E], ProviderEvent],
        known_bounds: Callable[[Mapping[str, Any]], Bounds | None],
        tombstone: Callable[[str, Mapping[str, Any]], ProviderEvent | None],
    ):
        self._struct = struct
        self._decoder = msgspec.json.Decoder(struct)
        self._read = read
        self._known_bounds = known_bounds
        self._tombstone = tombstone

    def item(self, raw: msgspec.Raw | Any) -> ProviderEvent | Quarantined:
        """One item of a listing page, still raw JSON (or plain, see ListingDecoder)."""
        if not isinstance(raw, msgspec.Raw):
            return self.decoded(raw)
        try:
            event = self._decoder.decode(raw)
        except msgspec.ValidationError as exc:
            return self._unreadable(msgspec.json.decode(raw), str(exc))
        return self._parse(event, raw)

    def read(self, event: E) -> ProviderEvent | None:
        """An event decoded with its page, or None when it cannot be read (see DecodedItems)."""
        if not event.id:
            return None
        try:
            return self._read(event.id, event)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

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

    def _unreadable(self, raw: Any, reason: str) -> ProviderEvent | Quarantined:
        # An item that does not fit the struct: still a removal if it says so (only the id
        # counts on a tombstone), else quarantined, blocking its known bounds if it has an id.
        if not isinstance(raw, dict):
            return Quarantined("", "item is not an object", {"item": raw})
        event_id = raw.get("id")
        if not isinstance(event_id, str) or not event_id:
            return Quarantined("", reason, raw)
        return self._tombstone(event_id, raw) or Quarantined(event_id, reason, raw, self._known_bounds(raw))


def _plain(source: Any) -> Any:
    return msgspec.json.decode(source) if isinstance(source, msgspec.Raw) else source


# Items parsed between two yields to the event loop (about half a millisecond of work).
SLICE = 64


async def parse_page(items: Sequence[Any], next_cursor: str | None, full: bool, reader: EventReader[Any]) -> ChangePage:
    """A page of parsed events; what cannot be parsed is quarantined, never fatal.

    It yields to the event loop between slices of items: the request for the next page
    (started by `http.read_ahead`) waits on the loop for its budget slot and its send, and
    would otherwise leave only after this page's milliseconds of parsing."""
    if isinstance(items, DecodedItems):
        events = await _read_all(items, reader)
        if events is not None:
            return ChangePage(tuple(events), (), next_cursor, full)
        items = items.raw()  # an item cannot be read: quarantine it as it came
    parsed: list[ProviderEvent] = []
    quarantined: list[Quarantined] = []
    for at in range(0, len(items), SLICE):
        await asyncio.sleep(0)
        for raw in items[at : at + SLICE]:
            item = reader.item(raw)
            if isinstance(item, ProviderEvent):
                parsed.append(item)
            else:
                quarantined.append(item)
    return ChangePage(tuple(parsed), tuple(quarantined), next_cursor, full)


async def _read_all(items: DecodedItems, reader: EventReader[Any]) -> list[ProviderEvent] | None:
    """Every event of a page decoded in one pass, or None as soon as one cannot be read."""
    events: list[ProviderEvent] = []
    for at in range(0, len(items), SLICE):
        await asyncio.sleep(0)
        for decoded in items[at : at + SLICE]:
            event = reader.read(decoded)
            if event is None:
                return None
            events.append(event)
    return events


def single_event(raw: Any, parse: Parser) -> ProviderEvent:
    """One event the caller asked for by id: unreadable is an error, not a quarantine."""
    parsed = parse(raw)
    if isinstance(parsed, Quarantined):
        raise errors.MalformedResponseError(f"unreadable event: {parsed.reason}")
    return parsed
