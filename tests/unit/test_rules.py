"""The busy policy: table-driven cases and hypothesis properties of to_busy."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec import structs

from providers.base import ProviderEvent, Quarantined, Window
from providers.rules import DEFAULT_POLICY, BusyPolicy, quarantined_busy, to_busy

BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def timed(**kw: object) -> ProviderEvent:
    base = ProviderEvent(id="e1", start=T0, end=T0 + timedelta(hours=1))
    return structs.replace(base, **kw)


def all_day(day: date, days: int = 1, **kw: object) -> ProviderEvent:
    base = ProviderEvent(id="d1", start=day, end=day + timedelta(days=days), all_day=True)
    return structs.replace(base, **kw)


def busy(event: ProviderEvent, policy: BusyPolicy = DEFAULT_POLICY, window: Window = WINDOW):
    return to_busy(event, resource_tz=BERLIN, window=window, policy=policy)


RULE_CASES = [
    ("plain busy", timed(), DEFAULT_POLICY, "busy"),
    ("unknown show-as blocks", timed(show_as="unknown"), DEFAULT_POLICY, "busy"),
    ("removed", timed(removed=True), DEFAULT_POLICY, None),
    ("cancelled", timed(status="cancelled"), DEFAULT_POLICY, None),
    ("free", timed(show_as="free"), DEFAULT_POLICY, None),
    ("free when free blocks", timed(show_as="free"), BusyPolicy(free=True), "free"),
    ("declined", timed(self_response="declined"), DEFAULT_POLICY, None),
    (
        "declined when declined blocks",
        timed(self_response="declined"),
        BusyPolicy(declined=True),
        "declined",
    ),
    ("declined beats busy", timed(self_response="declined", show_as="busy"), DEFAULT_POLICY, None),
    ("tentative show-as", timed(show_as="tentative"), DEFAULT_POLICY, "tentative"),
    ("tentative status", timed(status="tentative"), DEFAULT_POLICY, "tentative"),
    ("owner said maybe", timed(self_response="tentative"), DEFAULT_POLICY, "tentative"),
    ("tentative switched off", timed(show_as="tentative"), BusyPolicy(tentative=False), None),
    ("needs action blocks", timed(self_response="needs_action"), DEFAULT_POLICY, "busy"),
    ("accepted blocks", timed(self_response="accepted"), DEFAULT_POLICY, "busy"),
    ("oof", timed(show_as="oof"), DEFAULT_POLICY, "oof"),
    ("oof switched off", timed(show_as="oof"), BusyPolicy(oof=False), None),
    ("working elsewhere", timed(show_as="working_elsewhere"), DEFAULT_POLICY, None),
    (
        "working elsewhere on",
        timed(show_as="working_elsewhere"),
        BusyPolicy(working_elsewhere=True),
        "working_elsewhere",
    ),
    ("written by calsync", timed(appointment_tag="appt-1"), DEFAULT_POLICY, None),
    (
        "tagged even if every kind blocks",
        timed(appointment_tag="a"),
        BusyPolicy(free=True, declined=True),
        None,
    ),
    ("all-day busy", all_day(date(2026, 5, 4)), DEFAULT_POLICY, "all_day"),
    ("all-day switched off", all_day(date(2026, 5, 4)), BusyPolicy(all_day=False), None),
    (
        "all-day free (Google's default)",
        all_day(date(2026, 5, 4), show_as="free"),
        DEFAULT_POLICY,
        None,
    ),
    ("all-day oof", all_day(date(2026, 5, 4), show_as="oof"), DEFAULT_POLICY, "oof"),
    ("zero length", timed(end=T0), DEFAULT_POLICY, None),
    ("end before start", timed(end=T0 - timedelta(hours=1)), DEFAULT_POLICY, None),
    ("no times", timed(start=None, end=None), DEFAULT_POLICY, None),
]


@pytest.mark.parametrize(("case", "event", "policy", "rule"), RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_rule_table(case: str, event: ProviderEvent, policy: BusyPolicy, rule: str | None) -> None:
    result = busy(event, policy)
    assert (result.rule if result else None) == rule


def test_timed_event_is_stored_in_utc() -> None:
    event = timed(
        start=datetime(2026, 5, 4, 11, 0, tzinfo=BERLIN),
        end=datetime(2026, 5, 4, 12, 30, tzinfo=BERLIN),
    )
    result = busy(event)
    assert result is not None
    assert (result.start, result.end) == (
        datetime(2026, 5, 4, 9, 0, tzinfo=UTC),
        datetime(2026, 5, 4, 10, 30, tzinfo=UTC),
    )
    assert result.start.utcoffset() == timedelta(0)
    assert (result.event_id, result.all_day, result.show_as) == ("e1", False, "busy")


@pytest.mark.parametrize(
    ("day", "hours"),
    [(date(2026, 5, 4), 24), (date(2026, 3, 29), 23), (date(2026, 10, 25), 25)],
    ids=["ordinary day", "spring forward", "fall back"],
)
def test_all_day_blocks_the_whole_local_day(day: date, hours: int) -> None:
    result = busy(all_day(day))
    assert result is not None
    assert result.start == datetime.combine(day, datetime.min.time(), tzinfo=BERLIN)
    assert result.end - result.start == timedelta(hours=hours)
    assert result.all_day


def test_all_day_uses_the_resource_zone_not_utc() -> None:
    tokyo = to_busy(
        all_day(date(2026, 5, 4)),
        resource_tz=ZoneInfo("Asia/Tokyo"),
        window=WINDOW,
        policy=DEFAULT_POLICY,
    )
    assert tokyo is not None
    assert tokyo.start == datetime(2026, 5, 3, 15, 0, tzinfo=UTC)


def test_multi_day_all_day_event() -> None:
    result = busy(all_day(date(2026, 5, 4), days=3))
    assert result is not None
    assert result.end - result.start == timedelta(days=3)


def test_clipped_at_both_window_edges() -> None:
    window = Window(T0 + timedelta(minutes=15), T0 + timedelta(minutes=45))
    result = busy(timed(), window=window)
    assert result is not None
    assert (result.start, result.end) == (window.start, window.end)


@pytest.mark.parametrize("shift", [timedelta(hours=-1), timedelta(hours=1)], ids=["before", "after"])
def test_nothing_outside_the_window(shift: timedelta) -> None:
    # The window ends exactly where the event starts (or starts where it ends): half-open.
    window = Window(T0 + shift, T0 + shift + timedelta(hours=1))
    assert busy(timed(), window=window) is None


def test_quarantined_event_blocks_its_known_bounds() -> None:
    q = Quarantined(id="bad", reason="x", raw={}, bounds=(T0, T0 + timedelta(hours=2)))
    result = quarantined_busy(q, window=WINDOW)
    assert result is not None
    assert (result.rule, result.start, result.end) == ("quarantined", T0, T0 + timedelta(hours=2))
    assert quarantined_busy(replace(q, bounds=None), window=WINDOW) is None


def test_window_rejects_naive_or_empty_ranges() -> None:
    with pytest.raises(ValueError):
        Window(datetime(2026, 1, 1), datetime(2026, 1, 2))
    with pytest.raises(ValueError):
        Window(T0, T0)


# --- properties ---------------------------------------------------------------------------

ZONES = st.sampled_from(
    [
        UTC,
        BERLIN,
        ZoneInfo("America/New_York"),
        ZoneInfo("Asia/Kolkata"),
        ZoneInfo("Australia/Lord_Howe"),
    ]
)
instants = st.builds(
    lambda minutes, tz: (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)).astimezone(tz),
    st.integers(min_value=-60 * 24 * 30, max_value=60 * 24 * 400),
    ZONES,
)
policies = st.builds(BusyPolicy, *[st.booleans()] * 6)


@st.composite
def events(draw: st.DrawFn) -> ProviderEvent:
    start = draw(instants)
    is_all_day = draw(st.booleans())
    if is_all_day:
        day = start.date()
        span: tuple[object, object] = (day, day + timedelta(days=draw(st.integers(0, 5))))
    else:
        span = (start, start + timedelta(minutes=draw(st.integers(-60, 60 * 72))))
    return ProviderEvent(
        id=draw(st.text(min_size=1, max_size=5)),
        removed=draw(st.booleans()),
        status=draw(st.sampled_from(["confirmed", "tentative", "cancelled"])),
        start=span[0],  # type: ignore[arg-type]
        end=span[1],  # type: ignore[arg-type]
        all_day=is_all_day,
        show_as=draw(st.sampled_from(["busy", "free", "tentative", "oof", "working_elsewhere", "unknown"])),
        self_response=draw(st.sampled_from([None, "accepted", "declined", "tentative", "needs_action"])),
        appointment_tag=draw(st.sampled_from([None, "appt"])),
    )


@st.composite
def windows(draw: st.DrawFn) -> Window:
    start = draw(instants)
    return Window(start, start + timedelta(minutes=draw(st.integers(1, 60 * 24 * 60))))


@given(events(), windows(), policies, ZONES.filter(lambda z: z is not UTC))
def test_interval_is_inside_the_window_and_non_empty(event, window, policy, tz) -> None:
    result = to_busy(event, resource_tz=tz, window=window, policy=policy)
    if result is not None:
        assert window.start <= result.start < result.end <= window.end
        assert result.start.utcoffset() == timedelta(0) and result.end.utcoffset() == timedelta(0)
        assert result.event_id == event.id


@given(events(), windows(), policies)
def test_mapping_is_idempotent(event, window, policy) -> None:
    first = to_busy(event, resource_tz=BERLIN, window=window, policy=policy)
    assert to_busy(event, resource_tz=BERLIN, window=window, policy=policy) == first
    if first is not None:
        # Feeding the interval back in as the event's own span yields the same interval.
        again = structs.replace(event, start=first.start, end=first.end)
        second = to_busy(again, resource_tz=BERLIN, window=window, policy=policy)
        assert second is not None and (second.start, second.end) == (first.start, first.end)


@given(events(), windows(), policies)
def test_skip_rules_hold_under_any_policy(event, window, policy) -> None:
    result = to_busy(event, resource_tz=BERLIN, window=window, policy=policy)
    if event.removed or event.status == "cancelled" or event.appointment_tag:
        assert result is None
    if event.self_response == "declined" and not policy.declined:
        assert result is None
    if event.show_as == "free" and not policy.free and event.self_response != "declined":
        assert result is None


@given(events(), windows())
def test_blocking_everything_blocks_every_live_overlapping_event(event, window) -> None:
    everything = BusyPolicy(True, True, True, True, True, True)
    live = structs.replace(event, removed=False, status="confirmed", appointment_tag=None)
    result = to_busy(live, resource_tz=BERLIN, window=window, policy=everything)
    start, end = live.start, live.end
    if isinstance(start, datetime) and isinstance(end, datetime):
        overlaps = start < window.end and end > window.start and end > start
        assert (result is not None) == overlaps
