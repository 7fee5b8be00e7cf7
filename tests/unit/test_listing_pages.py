"""A listing page's bytes → typed events: one unreadable item is quarantined alone, as it came."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from providers.base import ProviderEvent
from providers.google import mapping as google
from providers.google import wire as google_wire
from providers.google.wire import EventsPage
from providers.outlook import mapping as outlook
from providers.outlook import wire as graph_wire
from providers.outlook.wire import APPOINTMENT_PROPERTY_ID, DeltaPage
from providers.parsing import DecodedItems, ListingDecoder, parse_page

T9 = datetime(2026, 5, 4, 9, tzinfo=UTC)
T10 = datetime(2026, 5, 4, 10, tzinfo=UTC)

GOOGLE_GOOD = {"id": "good", "status": "confirmed", "start": {"dateTime": "2026-05-04T09:00:00Z"}}
GOOGLE_GOOD["end"] = {"dateTime": "2026-05-04T10:00:00Z"}
GRAPH_GOOD = {"id": "good", "start": {"dateTime": "2026-05-04T09:00:00.0000000", "timeZone": "UTC"}}
GRAPH_GOOD["end"] = {"dateTime": "2026-05-04T10:00:00.0000000", "timeZone": "UTC"}

CASES: dict[str, tuple[ListingDecoder[Any], str, Any, dict[str, Any]]] = {
    "google": (ListingDecoder(EventsPage, google_wire.Event, "items"), "items", google.READER, GOOGLE_GOOD),
    "outlook": (ListingDecoder(DeltaPage, graph_wire.Event, "value"), "value", outlook.READER, GRAPH_GOOD),
}


def listed(provider: str, items: list[Any]) -> Any:
    """The page's items as the client holds them: decoded with the page by its ListingDecoder."""
    decode, key, _, _ = CASES[provider]
    return getattr(decode(json.dumps({key: items}).encode()), key)


@pytest.mark.parametrize("provider", CASES)
async def test_a_page_whose_items_all_read_is_decoded_in_one_pass_and_reads_as_item_by_item(provider: str) -> None:
    _, _, reader, good = CASES[provider]
    items = [good, {**good, "id": "good2", "summary": "s", "subject": "s", "extra": [1]}]

    whole = listed(provider, items)
    assert isinstance(whole, DecodedItems)
    page = await parse_page(whole, "cursor", True, reader)

    assert page.events == tuple(reader.item(r) for r in whole.raw()) and not page.quarantined
    assert [e.id for e in page.events] == ["good", "good2"] and page.next_cursor == "cursor"


@pytest.mark.parametrize("provider", CASES)
async def test_an_item_that_fits_but_cannot_be_read_is_quarantined_as_it_came(provider: str) -> None:
    _, _, reader, good = CASES[provider]
    unreadable = {**good, "id": "late", "end": {"dateTime": "never", "timeZone": "UTC"}, "extra": {"kept": True}}

    page = await parse_page(listed(provider, [good, unreadable]), None, True, reader)

    assert [e.id for e in page.events] == ["good"]
    (held,) = page.quarantined
    assert (held.id, held.raw) == ("late", unreadable)


@pytest.mark.parametrize("provider", CASES)
async def test_a_bad_item_is_quarantined_alone_with_its_json(provider: str) -> None:
    _, _, reader, good = CASES[provider]
    wrong_type = {**good, "id": "wrong", "start": "2026-05-04"}  # start must be an object
    unreadable = {**good, "id": "late", "end": {"dateTime": "never", "timeZone": "UTC"}}
    items = [good, wrong_type, 42, unreadable, {**good, "id": "good2", "summary": "x", "subject": "x"}]

    page = await parse_page(listed(provider, items), "cursor", True, reader)

    assert [(e.id, e.start, e.end) for e in page.events] == [("good", T9, T10), ("good2", T9, T10)]
    held = {q.id: q for q in page.quarantined}
    assert set(held) == {"wrong", "", "late"}
    assert held["wrong"].raw == wrong_type and "start" in held["wrong"].reason
    assert held[""].raw == {"item": 42}
    assert held["late"].raw == unreadable and held["late"].bounds is None
    assert page.next_cursor == "cursor"


@pytest.mark.parametrize("provider", CASES)
async def test_a_listed_item_and_the_same_event_fetched_by_id_read_alike(provider: str) -> None:
    _, _, reader, good = CASES[provider]
    event = {**good, "attendees": [], "extra": {"nested": [1, 2]}}

    (from_page,) = (await parse_page(listed(provider, [event]), None, True, reader)).events
    from_dict = (google if provider == "google" else outlook).parse_event(event)

    assert isinstance(from_dict, ProviderEvent)
    assert from_page == from_dict


@pytest.mark.parametrize("provider", CASES)
async def test_a_lone_surrogate_escape_does_not_fail_its_page(provider: str) -> None:
    decode, key, reader, good = CASES[provider]
    struct = EventsPage if provider == "google" else DeltaPage
    cut = {**good, "id": "cut", "summary": "x\ud83d", "subject": "x\ud83d"}  # a subject cut mid-emoji
    raw = json.dumps({key: [good, cut], "nextPageToken": None}).encode()  # json writes "\ud83d"
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(raw, type=struct)  # why ListingDecoder exists

    page = decode(raw)
    events = (await parse_page(getattr(page, key), None, True, reader)).events

    assert [(e.id, e.summary) for e in events] == [("good", None), ("cut", "x\ud83d")]


async def test_renamed_and_nested_fields_are_read_from_a_listing() -> None:
    tag = {"id": APPOINTMENT_PROPERTY_ID, "value": "appt-1"}
    graph_items = [
        {**GRAPH_GOOD, "@odata.etag": 'W/"e1"', "singleValueExtendedProperties": [tag]},
        {"@odata.type": "#microsoft.graph.event", "id": "gone", "@removed": {"reason": "deleted"}},
    ]
    attendee = {"email": "me@x.test", "self": True, "responseStatus": "declined"}
    private = {"private": {"calsyncAppointmentId": "appt-2"}}
    google_items = [{**GOOGLE_GOOD, "etag": '"e2"', "attendees": [attendee], "extendedProperties": private}]

    (ours, gone) = (await parse_page(listed("outlook", graph_items), None, True, outlook.READER)).events
    (mine,) = (await parse_page(listed("google", google_items), None, True, google.READER)).events

    assert (ours.etag, ours.appointment_tag, gone.removed) == ('W/"e1"', "appt-1", True)
    assert (mine.etag, mine.self_response, mine.appointment_tag) == ('"e2"', "declined", "appt-2")


@pytest.mark.parametrize(
    ("provider", "item"),
    [
        ("google", {"id": "gone", "status": "cancelled", "start": "not an object"}),
        ("outlook", {"id": "gone", "@removed": {"reason": "deleted"}, "start": 5}),
    ],
)
async def test_a_removal_whose_other_fields_do_not_fit_is_still_a_removal(provider: str, item: dict[str, Any]) -> None:
    page = await parse_page(listed(provider, [item]), None, False, CASES[provider][2])

    assert [(e.id, e.removed) for e in page.events] == [("gone", True)] and not page.quarantined


@pytest.mark.parametrize("provider", CASES)
async def test_an_item_without_a_usable_id_blocks_nothing(provider: str) -> None:
    good = CASES[provider][3]
    (held,) = (await parse_page(listed(provider, [{**good, "id": 7}]), None, True, CASES[provider][2])).quarantined

    assert (held.id, held.bounds) == ("", None)
