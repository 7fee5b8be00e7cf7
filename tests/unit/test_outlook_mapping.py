"""Graph event JSON ⇄ ProviderEvent: table-driven cases and hypothesis properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.base import AppointmentBody, ProviderEvent, Quarantined, Window
from providers.outlook.mapping import appointment_body, parse_event, transaction_id_for
from providers.outlook.wire import APPOINTMENT_PROPERTY_ID
from providers.rules import DEFAULT_POLICY, to_busy

TIMED = {
    "@odata.etag": 'W/"EZ9r3czxY0m2jz8c45czkwAAFXcvIQ=="',
    "id": "AAMkAGI2TG93AAA=",
    "subject": "Standup",
    "start": {"dateTime": "2026-05-04T09:00:00.0000000", "timeZone": "UTC"},
    "end": {"dateTime": "2026-05-04T09:15:00.0000000", "timeZone": "UTC"},
    "isAllDay": False,
    "isCancelled": False,
    "showAs": "busy",
    "type": "singleInstance",
    "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
    "originalStartTimeZone": "W. Europe Standard Time",
    "lastModifiedDateTime": "2026-05-01T10:00:00.1234567Z",
}


def ev(**overrides: Any) -> dict[str, Any]:
    return {**TIMED, **overrides}


def parsed(raw: dict[str, Any]) -> ProviderEvent:
    result = parse_event(raw)
    assert isinstance(result, ProviderEvent), result
    return result


def test_timed_event_with_seven_fractional_digits() -> None:
    event = parsed(ev(start={"dateTime": "2026-05-04T09:00:00.1234567", "timeZone": "UTC"}))
    assert event.start == datetime(2026, 5, 4, 9, 0, 0, 123456, tzinfo=UTC)
    assert event.end == datetime(2026, 5, 4, 9, 15, tzinfo=UTC)
    assert (event.etag, event.summary, event.self_response) == (
        TIMED["@odata.etag"],
        "Standup",
        "accepted",
    )
    assert event.time_zone == "W. Europe Standard Time"


def test_iana_zone_is_honoured() -> None:
    event = parsed(ev(start={"dateTime": "2026-05-04T11:00:00.0000000", "timeZone": "Europe/Berlin"}))
    assert event.start == datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def test_windows_zone_name_is_honoured() -> None:
    raw = ev(start={"dateTime": "2026-05-04T09:00:00.0000000", "timeZone": "Pacific Standard Time"})
    assert parsed(raw).start == datetime(2026, 5, 4, 16, 0, tzinfo=UTC)


def test_all_day_event_keeps_dates() -> None:
    raw = ev(
        isAllDay=True,
        start={"dateTime": "2026-05-04T00:00:00.0000000", "timeZone": "UTC"},
        end={"dateTime": "2026-05-06T00:00:00.0000000", "timeZone": "UTC"},
    )
    event = parsed(raw)
    assert (event.start, event.end, event.all_day) == (date(2026, 5, 4), date(2026, 5, 6), True)


def test_removed_delta_entry() -> None:
    event = parsed({"@odata.type": "#microsoft.graph.event", "id": "x", "@removed": {"reason": "deleted"}})
    assert (event.id, event.removed, event.start) == ("x", True, None)


def test_cancelled_meeting_is_cancelled() -> None:
    assert parsed(ev(isCancelled=True)).status == "cancelled"


def test_occurrence_keeps_its_series() -> None:
    assert parsed(ev(type="occurrence", seriesMasterId="master")).series_id == "master"


@pytest.mark.parametrize(
    ("graph", "show_as"),
    [
        ("free", "free"),
        ("tentative", "tentative"),
        ("busy", "busy"),
        ("oof", "oof"),
        ("workingElsewhere", "working_elsewhere"),
        ("unknown", "unknown"),
        ("somethingNew", "unknown"),
    ],
)
def test_show_as(graph: str, show_as: str) -> None:
    assert parsed(ev(showAs=graph)).show_as == show_as


@pytest.mark.parametrize(
    ("graph", "response"),
    [
        ("accepted", "accepted"),
        ("organizer", "accepted"),
        ("declined", "declined"),
        ("tentativelyAccepted", "tentative"),
        ("notResponded", "needs_action"),
        ("none", None),
    ],
)
def test_owner_response(graph: str, response: str | None) -> None:
    assert parsed(ev(responseStatus={"response": graph})).self_response == response


def test_tag_from_extended_property_or_transaction_id() -> None:
    prop = [{"id": APPOINTMENT_PROPERTY_ID.upper(), "value": "appt-3"}]
    assert parsed(ev(singleValueExtendedProperties=prop)).appointment_tag == "appt-3"
    assert parsed(ev(transactionId=transaction_id_for("appt-4"))).appointment_tag == "appt-4"
    assert parsed(ev(transactionId="someone-elses")).appointment_tag is None


QUARANTINE_CASES = [
    ("no id", {k: v for k, v in TIMED.items() if k != "id"}, False),
    (
        "unknown zone",
        ev(start={"dateTime": "2026-05-04T09:00:00.0000000", "timeZone": "Nowhere Standard Time"}),
        True,
    ),
    ("garbage date", ev(end={"dateTime": "soon", "timeZone": "UTC"}), False),
    ("missing start", {k: v for k, v in TIMED.items() if k != "start"}, False),
    ("series master", ev(type="seriesMaster"), True),
]


@pytest.mark.parametrize(("case", "raw", "has_bounds"), QUARANTINE_CASES, ids=[c[0] for c in QUARANTINE_CASES])
def test_unreadable_events_are_quarantined(case: str, raw: dict[str, Any], has_bounds: bool) -> None:
    result = parse_event(raw)
    assert isinstance(result, Quarantined)
    assert result.reason and result.raw == raw
    assert (result.bounds is not None) == has_bounds


BODY = AppointmentBody(
    appointment_id="appt-7",
    title="Haircut",
    start=datetime(2026, 5, 4, 11, 0, tzinfo=ZoneInfo("Europe/Berlin")),
    end=datetime(2026, 5, 4, 12, 0, tzinfo=ZoneInfo("Europe/Berlin")),
    time_zone="Europe/Berlin",
    description="Bring photos",
    location="Salon",
    attendees=("client@x.test",),
)


def test_appointment_body_shape() -> None:
    body = appointment_body(BODY)
    assert body["start"] == {"dateTime": "2026-05-04T09:00:00.0000000", "timeZone": "UTC"}
    assert body["singleValueExtendedProperties"] == [{"id": APPOINTMENT_PROPERTY_ID, "value": "appt-7"}]
    assert body["location"] == {"displayName": "Salon"}
    assert "attendees" not in body and "client@x.test" in body["body"]["content"]
    assert (body["subject"], body["showAs"], body["isAllDay"]) == ("Haircut", "busy", False)


def test_written_appointment_is_recognised_and_skipped() -> None:
    event = parsed({**appointment_body(BODY), "id": "new"})
    assert event.appointment_tag == "appt-7"
    window = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert to_busy(event, resource_tz=ZoneInfo("UTC"), window=window, policy=DEFAULT_POLICY) is None


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.integers(min_value=1, max_value=60 * 24 * 10),
)
def test_appointment_round_trips_through_the_event_json(start: datetime, minutes: int) -> None:
    body = AppointmentBody("a", "t", start, start + timedelta(minutes=minutes), "Europe/Berlin")
    event = parsed({**appointment_body(body), "id": "x"})
    assert (event.start, event.end, event.appointment_tag) == (body.start, body.end, "a")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
fields = st.sampled_from(
    [
        "id",
        "start",
        "end",
        "isAllDay",
        "showAs",
        "responseStatus",
        "type",
        "@removed",
        "singleValueExtendedProperties",
        "transactionId",
        "lastModifiedDateTime",
    ]
)


@given(st.dictionaries(fields, json_values, max_size=8))
def test_any_json_parses_or_quarantines(raw: dict[str, Any]) -> None:
    assert isinstance(parse_event(raw), ProviderEvent | Quarantined)
