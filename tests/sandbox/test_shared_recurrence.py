"""The shared recurrence expander (pure; no sandbox needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from providers.sandbox.recurrence import RecurrenceError, includes, occurrences

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = timedelta(hours=1)
FAR = datetime(2030, 1, 1, tzinfo=UTC)


def starts(start: datetime, lines: list[str], **window: datetime | None) -> list[datetime]:
    """Occurrence starts in the window (default: everything before 2030)."""
    lower = window.get("window_start")
    upper = window.get("window_end") or (FAR if start.tzinfo else FAR.replace(tzinfo=None))
    return list(occurrences(start, lines, duration=HOUR, window_start=lower, window_end=upper))


def test_wall_clock_survives_dst() -> None:
    got = starts(datetime(2026, 3, 28, 9, tzinfo=BERLIN), ["RRULE:FREQ=DAILY;COUNT=2"])
    assert [d.astimezone(UTC).hour for d in got] == [8, 7]


def test_exdate_rdate_and_tzid() -> None:
    lines = [
        "RRULE:FREQ=DAILY;COUNT=3",
        "EXDATE;TZID=America/New_York:20260102T040000",  # 10:00 Berlin
        "RDATE;VALUE=DATE:20260110",
        "RDATE:20260111T120000Z",
    ]
    got = starts(datetime(2026, 1, 1, 10, tzinfo=BERLIN), lines)
    assert [(d.day, d.astimezone(UTC).hour) for d in got] == [(1, 9), (3, 9), (10, 9), (11, 12)]


def test_all_day_until_date_and_exdate() -> None:
    got = starts(datetime(2026, 1, 1), ["RRULE:FREQ=WEEKLY;UNTIL=20260122", "EXDATE;VALUE=DATE:20260108"])
    assert [d.day for d in got] == [1, 15, 22]


def test_until_without_z_on_timed_series_is_local() -> None:
    got = starts(datetime(2026, 1, 1, 10, tzinfo=BERLIN), ["RRULE:FREQ=DAILY;UNTIL=20260103T100000"])
    assert len(got) == 3


def test_window_uses_overlap_rule() -> None:
    start = datetime(2026, 1, 1, 10, tzinfo=UTC)
    lines = ["RRULE:FREQ=DAILY;COUNT=5"]
    window = {"window_start": datetime(2026, 1, 2, 11, tzinfo=UTC), "window_end": datetime(2026, 1, 4, 10, tzinfo=UTC)}
    assert [d.day for d in starts(start, lines, **window)] == [3]


def test_infinite_series_only_walks_the_window() -> None:
    start = datetime(2000, 1, 1, 10, tzinfo=UTC)
    window = {"window_start": datetime(2026, 1, 1, tzinfo=UTC), "window_end": datetime(2026, 1, 3, tzinfo=UTC)}
    assert [d.date().isoformat() for d in starts(start, ["RRULE:FREQ=DAILY"], **window)] == ["2026-01-01", "2026-01-02"]


def test_includes() -> None:
    start = datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert includes(start, ["RRULE:FREQ=WEEKLY"], start + timedelta(days=7))
    assert not includes(start, ["RRULE:FREQ=WEEKLY"], start + timedelta(days=8))


@pytest.mark.parametrize("line", ["RRULE:FREQ=SOMETIMES", "FOO:BAR", "RRULE", "EXDATE:2026xx01"])
def test_bad_lines_raise(line: str) -> None:
    with pytest.raises(RecurrenceError):
        starts(datetime(2026, 1, 1, 10, tzinfo=UTC), [line])
