"""Turning listed provider items into typed pages: shared by the Google and Graph clients."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from providers import errors
from providers.base import ChangePage, ProviderEvent, Quarantined

Parser = Callable[[dict[str, Any]], ProviderEvent | Quarantined]


def change_page(items: Any, next_cursor: str | None, full: bool, parse: Parser) -> ChangePage:
    """A page of parsed events; what cannot be parsed is quarantined, never fatal."""
    events: list[ProviderEvent] = []
    quarantined: list[Quarantined] = []
    for raw in items:
        parsed = parse(raw) if isinstance(raw, dict) else Quarantined("", "item is not an object", {"item": raw})
        if isinstance(parsed, ProviderEvent):
            events.append(parsed)
        else:
            quarantined.append(parsed)
    return ChangePage(tuple(events), tuple(quarantined), next_cursor, full)


async def parse_page(items: Any, next_cursor: str | None, full: bool, parse: Parser) -> ChangePage:
    """`change_page` in a worker thread: a page of thousands of events is pure CPU work, and
    off the event loop it no longer holds up the next page's request or the database."""
    return await asyncio.to_thread(change_page, items, next_cursor, full, parse)


def single_event(raw: dict[str, Any], parse: Parser) -> ProviderEvent:
    """One event the caller asked for by id: unreadable is an error, not a quarantine."""
    parsed = parse(raw)
    if isinstance(parsed, Quarantined):
        raise errors.MalformedResponseError(f"unreadable event: {parsed.reason}")
    return parsed
