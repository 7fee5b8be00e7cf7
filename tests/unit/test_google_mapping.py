"""Google event JSON ⇄ ProviderEvent: table-driven cases and hypothesis properties."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.base import AppointmentBody, ProviderEvent, Quarantined, Window
from providers.google.mapping import appointment_body, event_id_for, parse_event
from providers.rules import DEFAULT_POLICY, to_busy

TIMED = {
    "id": "ev1",
    "status": "confirmed",
    "etag": '"3432109876543000"',
    "updated": "2026-05-01T10:00:00.000Z",
    "summary": "Dentist",
    "start": {"dateTime": "2026-05-04T11:00:00+02:00", "timeZone": "Europe/Berlin"},
    "end": {"dateTime": "2026-05-04T12:00:00+02:00", "timeZone": "Europe/Berlin"},
}


def ev(**overrides: Any) -> dict[str, Any]:
    return {**TIMED, **overrides}


def parsed(raw: dict[str, Any]) -> ProviderEvent:
    result = parse_event(raw)
    assert isinstance(result, ProviderEvent), result
    return result


def test_timed_event() -> None:
    event = parsed(ev())
    assert event.start == datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    assert event.end == datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    assert (event.all_day, event.show_as, event.status, event.removed) == (
        False,
        "busy",
        "confirmed",
        False,
    )
    assert (event.etag, event.summary, event.time_zone) == (
        '"3432109876543000"',
        "Dentist",
        "Europe/Berlin",
    )


def test_naive_datetime_takes_its_time_zone() -> None:
    event = parsed(ev(start={"dateTime": "2026-05-04T11:00:00", "timeZone": "America/New_York"}))
    assert event.start == datetime(2026, 5, 4, 15, 0, tzinfo=UTC)


def test_all_day_event_keeps_dates() -> None:
    event = parsed(ev(start={"date": "2026-05-04"}, end={"date": "2026-05-05"}))
    assert (event.start, event.end, event.all_day) == (date(2026, 5, 4), date(2026, 5, 5), True)


def test_cancelled_tombstone_with_only_an_id() -> None:
    event = parsed({"id": "gone", "status": "cancelled"})
    assert (event.removed, event.status, event.start) == (True, "cancelled", None)


def test_recurring_instance_keeps_its_series() -> None:
    event = parsed(ev(id="abc_20260504T090000Z", recurringEventId="abc", originalStartTime=TIMED["start"]))
    assert (event.id, event.series_id) == ("abc_20260504T090000Z", "abc")


def test_cancelled_instance_is_removed_with_its_series() -> None:
    event = parsed({"id": "abc_20260504T090000Z", "status": "cancelled", "recurringEventId": "abc"})
    assert (event.removed, event.series_id) == (True, "abc")


SHOW_AS_CASES = [
    ({}, "busy"),
    ({"transparency": "opaque"}, "busy"),
    ({"transparency": "transparent"}, "free"),
    ({"status": "tentative"}, "tentative"),
    ({"eventType": "outOfOffice"}, "oof"),
    ({"eventType": "workingLocation", "transparency": "transparent"}, "working_elsewhere"),
    ({"eventType": "focusTime"}, "busy"),
]


@pytest.mark.parametrize(("fields", "show_as"), SHOW_AS_CASES)
def test_show_as(fields: dict[str, Any], show_as: str) -> None:
    assert parsed(ev(**fields)).show_as == show_as


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("accepted", "accepted"),
        ("declined", "declined"),
        ("tentative", "tentative"),
        ("needsAction", "needs_action"),
    ],
)
def test_owner_response_comes_from_the_self_attendee(status: str, expected: str) -> None:
    attendees = [
        {"email": "boss@x.test", "responseStatus": "accepted"},
        {"email": "me@x.test", "self": True, "responseStatus": status},
    ]
    assert parsed(ev(attendees=attendees)).self_response == expected


def test_no_self_attendee_means_no_response() -> None:
    assert parsed(ev(attendees=[{"email": "a@x.test", "responseStatus": "declined"}])).self_response is None


def test_calsync_tag_is_read_from_private_properties() -> None:
    assert parsed(ev(extendedProperties={"private": {"calsyncAppointmentId": "appt-9"}})).appointment_tag == "appt-9"
    assert parsed(ev(extendedProperties={"shared": {"calsyncAppointmentId": "appt-9"}})).appointment_tag is None


QUARANTINE_CASES = [
    ("no id", {k: v for k, v in TIMED.items() if k != "id"}, False),
    ("mixed all-day and timed", ev(end={"date": "2026-05-05"}), False),
    (
        "unknown zone",
        ev(start={"dateTime": "2026-05-04T11:00:00", "timeZone": "Mars/Olympus"}),
        False,
    ),
    ("naive without zone", ev(start={"dateTime": "2026-05-04T11:00:00"}), False),
    ("garbage date", ev(start={"dateTime": "yesterday"}), False),
    ("missing end", {k: v for k, v in TIMED.items() if k != "end"}, False),
    ("start is a string", ev(start="2026-05-04"), False),
    ("unexpanded series master", ev(recurrence=["RRULE:FREQ=DAILY"]), True),
]


@pytest.mark.parametrize(("case", "raw", "has_bounds"), QUARANTINE_CASES, ids=[c[0] for c in QUARANTINE_CASES])
def test_unreadable_events_are_quarantined(case: str, raw: dict[str, Any], has_bounds: bool) -> None:
    result = parse_event(raw)
    assert isinstance(result, Quarantined)
    assert result.reason and result.raw == raw
    assert (result.bounds is not None) == has_bounds


def test_event_id_is_stable_base32hex() -> None:
    first = event_id_for("appt-1")
    assert first == event_id_for("appt-1") != event_id_for("appt-2")
    assert re.fullmatch(r"[0-9a-v]{5,1024}", first)


BODY = AppointmentBody(
    appointment_id="appt-7",
    title="Haircut",
    start=datetime(2026, 5, 4, 9, 0, tzinfo=UTC),
    end=datetime(2026, 5, 4, 10, 0, tzinfo=UTC),
    time_zone="Europe/Berlin",
    description=None,
    location="Salon",
    attendees=("client@x.test",),
)


def test_appointment_body_shape() -> None:
    body = appointment_body(BODY)
    assert body["start"] == {"dateTime": "2026-05-04T11:00:00+02:00", "timeZone": "Europe/Berlin"}
    assert body["extendedProperties"] == {"private": {"calsyncAppointmentId": "appt-7"}}
    assert body["attendees"] == [{"email": "client@x.test"}]
    assert (body["summary"], body["location"], body["description"], body["transparency"]) == (
        "Haircut",
        "Salon",
        "",
        "opaque",
    )
    assert "id" not in body


def test_written_appointment_is_recognised_and_skipped() -> None:
    raw = {**appointment_body(BODY), "id": event_id_for("appt-7")}
    event = parsed(raw)
    assert event.appointment_tag == "appt-7"
    window = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert to_busy(event, resource_tz=ZoneInfo("UTC"), window=window, policy=DEFAULT_POLICY) is None


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.integers(min_value=1, max_value=60 * 24 * 10),
    st.sampled_from(["UTC", "Europe/Berlin", "America/Los_Angeles", "Asia/Kathmandu"]),
)
def test_appointment_round_trips_through_the_event_json(start: datetime, minutes: int, zone: str) -> None:
    body = AppointmentBody("a", "t", start, start + timedelta(minutes=minutes), zone)
    event = parsed({**appointment_body(body), "id": "x1234"})
    assert (event.start, event.end, event.appointment_tag) == (body.start, body.end, "a")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
fields = st.sampled_from(
    [
        "id",
        "status",
        "start",
        "end",
        "transparency",
        "attendees",
        "extendedProperties",
        "recurrence",
        "eventType",
        "updated",
    ]
)


@given(st.dictionaries(fields, json_values, max_size=8))
def test_any_json_parses_or_quarantines(raw: dict[str, Any]) -> None:
    assert isinstance(parse_event(raw), ProviderEvent | Quarantined)
