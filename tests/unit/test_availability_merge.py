"""Pure busy/free arithmetic and stale policy: tables and properties, no fixtures."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from worker.availability import Interval, RangeError, Source, free_between, merge_busy, parse_instant, resolve_range
from worker.freshness import LinkState, assess, resolve_policy, verdict

T0 = datetime(2026, 6, 1, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def src(name: str) -> Source:
    return Source("unavailability", name, 1, "primary", "google")


def spans(blocks: list[object]) -> list[tuple[float, float]]:
    return [((b.start - T0).total_seconds() / 3600, (b.end - T0).total_seconds() / 3600) for b in blocks]  # type: ignore[attr-defined]


MERGE_CASES = [
    ("empty", [], [], [(0, 24)]),
    ("one", [(9, 10)], [(9, 10)], [(0, 9), (10, 24)]),
    ("overlapping", [(9, 11), (10, 12)], [(9, 12)], [(0, 9), (12, 24)]),
    ("adjacent merge", [(9, 10), (10, 11)], [(9, 11)], [(0, 9), (11, 24)]),
    ("contained", [(9, 17), (10, 11)], [(9, 17)], [(0, 9), (17, 24)]),
    ("unsorted", [(13, 14), (9, 10)], [(9, 10), (13, 14)], [(0, 9), (10, 13), (14, 24)]),
    ("clipped both ends", [(-5, 1), (23, 30)], [(0, 1), (23, 24)], [(1, 23)]),
    ("outside", [(-5, 0), (24, 30)], [], [(0, 24)]),
    ("whole range", [(-1, 25)], [(0, 24)], []),
]


@pytest.mark.parametrize(("name", "rows", "busy", "free"), MERGE_CASES, ids=[c[0] for c in MERGE_CASES])
def test_merge_table(name: str, rows: list[tuple[float, float]], busy: list[tuple[float, float]], free: list) -> None:
    blocks = merge_busy([(h(s), h(e), src(f"{s}-{e}")) for s, e in rows], h(0), h(24))
    assert spans(blocks) == busy
    assert spans(free_between(blocks, h(0), h(24))) == free


def test_merged_block_keeps_every_source() -> None:
    appt = Source("appointment", "apt-1")
    blocks = merge_busy([(h(9), h(10), src("a")), (h(10), h(11), appt), (h(10.5), h(12), src("b"))], h(0), h(24))
    assert len(blocks) == 1
    assert {s.id for s in blocks[0].sources} == {"a", "apt-1", "b"}


def test_duration_filter_keeps_only_long_enough_gaps() -> None:
    blocks = merge_busy([(h(9), h(10), src("a")), (h(10.5), h(12), src("b"))], h(8), h(13))
    assert spans(free_between(blocks, h(8), h(13), timedelta(minutes=30))) == [(8, 9), (10, 10.5), (12, 13)]
    assert spans(free_between(blocks, h(8), h(13), timedelta(minutes=31))) == [(8, 9), (12, 13)]
    assert spans(free_between(blocks, h(8), h(13), timedelta(hours=2))) == []


intervals = st.lists(
    st.tuples(st.integers(-120, 1560), st.integers(1, 600)).map(lambda t: (t[0], t[0] + t[1])), max_size=30
)


@given(intervals, st.integers(0, 1440), st.integers(1, 1440))
def test_busy_and_free_partition_the_range(rows: list[tuple[int, int]], start_min: int, length: int) -> None:
    start, end = T0 + timedelta(minutes=start_min), T0 + timedelta(minutes=start_min + length)
    items = [(T0 + timedelta(minutes=s), T0 + timedelta(minutes=e), src(str(i))) for i, (s, e) in enumerate(rows)]
    busy = merge_busy(items, start, end)
    free = free_between(busy, start, end)
    pieces = sorted([(b.start, b.end, "b") for b in busy] + [(f.start, f.end, "f") for f in free])
    # Sorted, disjoint, covering exactly [start, end), busy and free alternating (adjacent busy merged).
    cursor = start
    for s, e, _ in pieces:
        assert s == cursor and e > s
        cursor = e
    assert cursor == end
    assert all(a[2] != b[2] for a, b in itertools.pairwise(pieces))
    # Every minute is busy exactly when some clipped row covers it.
    for minute in range(start_min, start_min + length, 7):
        t = T0 + timedelta(minutes=minute)
        covered = any(T0 + timedelta(minutes=s) <= t < T0 + timedelta(minutes=e) for s, e in rows)
        assert covered == any(b.start <= t < b.end for b in busy)
    # Every row inside the range is credited to the block that holds it.
    credited = {src_.id for b in busy for src_ in b.sources}
    inside = {
        str(i) for i, (s, e) in enumerate(rows) if T0 + timedelta(minutes=s) < end and T0 + timedelta(minutes=e) > start
    }
    assert credited == inside


@given(intervals, st.integers(1, 240))
def test_duration_filter_is_a_subset_of_gaps(rows: list[tuple[int, int]], minutes: int) -> None:
    items = [(T0 + timedelta(minutes=s), T0 + timedelta(minutes=e), src(str(i))) for i, (s, e) in enumerate(rows)]
    start, end = T0, T0 + timedelta(days=1)
    busy = merge_busy(items, start, end)
    gaps = free_between(busy, start, end)
    long = free_between(busy, start, end, timedelta(minutes=minutes))
    assert long == [g for g in gaps if g.end - g.start >= timedelta(minutes=minutes)]


# --- ranges and time zones ---------------------------------------------------------------


def test_local_dates_on_dst_days_are_23_and_25_hours() -> None:
    spring = resolve_range("2026-03-29", "2026-03-30", BERLIN, max_days=62)
    autumn = resolve_range("2026-10-25", "2026-10-26", BERLIN, max_days=62)
    assert spring.end - spring.start == timedelta(hours=23)
    assert autumn.end - autumn.start == timedelta(hours=25)
    assert spring.start == datetime(2026, 3, 28, 23, tzinfo=UTC)


def test_free_time_across_spring_forward_in_local_hours() -> None:
    day = resolve_range("2026-03-08", "2026-03-09", NEW_YORK, max_days=62)
    # Busy 01:00-04:00 local: the clock jumps 02:00 → 03:00, so this is two real hours.
    busy = merge_busy(
        [(parse_instant("2026-03-08T01:00", NEW_YORK), parse_instant("2026-03-08T04:00", NEW_YORK), src("x"))],
        day.start,
        day.end,
    )
    assert busy[0].end - busy[0].start == timedelta(hours=2)
    free = free_between(busy, day.start, day.end)
    assert [f.end - f.start for f in free] == [timedelta(hours=1), timedelta(hours=20)]
    assert free[1].start.astimezone(NEW_YORK).isoformat() == "2026-03-08T04:00:00-04:00"


def test_wall_time_in_gap_resolves_after_the_gap() -> None:
    assert parse_instant("2026-03-29T02:30", BERLIN) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-06-02", "2026-06-01", "after"),
        ("2026-06-01", "2026-06-01", "after"),
        ("2026-06-01", "2026-09-01", "at most 62 days"),
        ("tomorrow", "2026-06-01", "not an ISO"),
        ("2026-13-01", "2026-06-01", "not an ISO"),
    ],
)
def test_bad_ranges(start: str, end: str, message: str) -> None:
    with pytest.raises(RangeError, match=message):
        resolve_range(start, end, BERLIN, max_days=62)


def test_offsets_and_z_are_honoured() -> None:
    span = resolve_range("2026-06-01T10:00:00+02:00", "2026-06-01T10:00:00Z", BERLIN, max_days=1)
    assert span == Interval(datetime(2026, 6, 1, 8, tzinfo=UTC), datetime(2026, 6, 1, 10, tzinfo=UTC))


# --- freshness and policy -----------------------------------------------------------------


def link(**kw: object) -> LinkState:
    base: dict[str, object] = {
        "link_id": 1,
        "calendar_id": "primary",
        "name": "Work",
        "provider": "google",
        "connection_status": "active",
        "last_synced_at": T0,
        "consecutive_failures": 0,
        "last_error": None,
        "sync_requested_at": None,
        "push_kind": None,
        "push_expires_at": None,
        "push_error": None,
        "window_start": None,
        "window_end": None,
    }
    return LinkState(**(base | kw))  # type: ignore[arg-type]


STALE = timedelta(minutes=15)
PUSH = {"push_kind": "google_channel", "push_expires_at": T0 + timedelta(days=1)}
FRESHNESS_CASES = [
    ("polled fresh", {}, 10, False, False, ()),
    ("polled stale", {}, 16, True, False, ("stale",)),
    ("never synced", {"last_synced_at": None}, 0, True, False, ("never_synced",)),
    ("push keeps it fresh", PUSH, 600, False, False, ()),
    ("push expired", {**PUSH, "push_expires_at": T0 + timedelta(minutes=1)}, 600, True, False, ("stale",)),
    ("push error", {**PUSH, "push_error": "gone"}, 600, True, False, ("stale",)),
    (
        "push, change pending long",
        {**PUSH, "sync_requested_at": T0 + timedelta(minutes=1)},
        30,
        True,
        False,
        ("stale",),
    ),
    ("push, change pending briefly", {**PUSH, "sync_requested_at": T0 + timedelta(minutes=1)}, 5, False, False, ()),
    ("reauth required", {"connection_status": "reauth_required"}, 1, False, True, ("reauth_required",)),
    ("outside window", {"window_end": T0 + timedelta(hours=1)}, 1, True, False, ("outside_sync_window",)),
]


@pytest.mark.parametrize(
    ("name", "kw", "minutes", "stale", "broken", "reasons"), FRESHNESS_CASES, ids=[c[0] for c in FRESHNESS_CASES]
)
def test_freshness_table(name: str, kw: dict, minutes: int, stale: bool, broken: bool, reasons: tuple) -> None:
    f = assess(link(**kw), now=T0 + timedelta(minutes=minutes), stale_after=STALE, start=T0, end=T0 + timedelta(days=1))
    assert (f.stale, f.broken, f.reasons) == (stale, broken, reasons)


def test_policy_resolution_order() -> None:
    kw = {"default_mode": "closed", "default_stale": 900.0}
    assert resolve_policy({}, {}, **kw).source == "config"
    p = resolve_policy({}, {"stalePolicy": "open", "staleAfterSeconds": 60}, **kw)
    assert (p.mode, p.source, p.stale_after) == ("open", "company", timedelta(seconds=60))
    p = resolve_policy({"stale_policy": "closed"}, {"stalePolicy": "open"}, **kw)
    assert (p.mode, p.source) == ("closed", "resource")
    p = resolve_policy({"stalePolicy": "maybe", "staleAfterSeconds": -3}, {}, **kw)
    assert (p.mode, p.source, p.stale_after) == ("closed", "config", timedelta(seconds=900))


def test_verdict_names_the_culprits_and_the_mode() -> None:
    now = T0 + timedelta(hours=1)
    fresh = assess(link(link_id=1, last_synced_at=now), now=now, stale_after=STALE, start=T0, end=now)
    broken = assess(
        link(link_id=2, connection_status="error", last_synced_at=now), now=now, stale_after=STALE, start=T0, end=now
    )
    closed = resolve_policy({}, {}, default_mode="closed", default_stale=900)
    opened = resolve_policy({}, {}, default_mode="open", default_stale=900)
    assert verdict(closed, [fresh]).applied == "none"
    assert (verdict(closed, [fresh, broken]).applied, verdict(closed, [fresh, broken]).link_ids) == ("closed", (2,))
    assert verdict(opened, [fresh, broken]).applied == "open"


ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe", "America/Santiago", "UTC"]


@given(st.sampled_from(ZONES), st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31)))
@example("America/Santiago", date(2025, 9, 6))  # the next midnight does not exist (clocks jump to 01:00)
def test_a_local_day_is_one_calendar_day_whatever_the_clock_does(zone_name: str, day: date) -> None:
    zone = ZoneInfo(zone_name)
    span = resolve_range(day.isoformat(), (day + timedelta(days=1)).isoformat(), zone, max_days=1)
    assert timedelta(hours=23) <= span.end - span.start <= timedelta(hours=25)
    assert span.start.astimezone(zone).date() == day and span.end.astimezone(zone).date() == day + timedelta(days=1)
    # Busy 09:00-17:00 local: free is the rest of that local day, whatever its length.
    nine, five = parse_instant(f"{day}T09:00", zone), parse_instant(f"{day}T17:00", zone)
    busy = merge_busy([(nine, five, src("work"))], span.start, span.end)
    free = free_between(busy, span.start, span.end)
    assert sum((f.end - f.start for f in free), timedelta()) + (five - nine) == span.end - span.start
    assert [f.end.astimezone(zone).strftime("%H:%M") for f in free][:1] == ["09:00"]
