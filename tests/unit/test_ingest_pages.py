"""Pure parts of ingest: the daily window, busy-rule overrides, and mapping a page to rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from jobs.ingest import Mapper, busy_policy, map_page, policy_as_json, sync_window
from providers.base import ChangePage, ProviderEvent, Quarantined
from providers.rules import DEFAULT_POLICY
from worker.config import SyncSettings

T = datetime(2026, 12, 1, 9, tzinfo=UTC)
H = timedelta(hours=1)
SETTINGS = SyncSettings(window_past_days=7, window_future_days=365)
MAPPER = Mapper(ZoneInfo("UTC"), sync_window(T, SETTINGS), DEFAULT_POLICY)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_the_window_is_whole_days_and_changes_only_at_midnight(now: datetime) -> None:
    window = sync_window(now, SETTINGS)
    assert window.start.time() == window.end.time() == datetime.min.time()
    assert window.start <= now - timedelta(days=7) < window.start + timedelta(days=1)
    assert window.end - window.start == timedelta(days=372)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    assert sync_window(midnight, SETTINGS) == window
    assert sync_window(midnight + timedelta(days=1), SETTINGS) != window


def test_resource_rules_override_company_rules_override_defaults() -> None:
    company = {"busyRules": {"tentative": False, "free": True, "bogus": True, "oof": "yes"}}
    resource = {"busyRules": {"free": False, "workingElsewhere": True}}

    policy = busy_policy(company, resource)

    assert policy_as_json(policy) == {
        "tentative": False,
        "declined": False,
        "allDay": True,
        "oof": True,
        "workingElsewhere": True,
        "free": False,
    }
    assert busy_policy({}, {"busyRules": "nonsense"}) == DEFAULT_POLICY


def test_a_page_maps_to_busy_gone_and_quarantined() -> None:
    page = ChangePage(
        (
            ProviderEvent("a", start=T, end=T + H),
            ProviderEvent("b", start=T, end=T + H, show_as="free"),
            ProviderEvent("c", removed=True),
            ProviderEvent("a", start=T + 2 * H, end=T + 3 * H),  # the last mention wins
            ProviderEvent("s_1", series_id="s", start=T, end=T + H),
        ),
        (Quarantined("", "no id", {"x": 1}), Quarantined("q", "bad rrule", {"id": "q"}, (T, T + H))),
    )

    rows = map_page(page, MAPPER)

    assert [(r.event_id, r.start) for r in rows.busy][:2] == [("a", T + 2 * H), ("s_1", T)]
    assert ("q", T, T + H, "quarantined") in [(r.event_id, r.start, r.end, r.rule) for r in rows.busy]
    synthetic = rows.quarantined[0].event_id
    assert synthetic.startswith("calsync:unreadable:") and synthetic in rows.gone
    assert synthetic == map_page(page, MAPPER).quarantined[0].event_id  # stable across syncs
    assert {"b", "c"} <= set(rows.gone) and rows.series
    assert rows.readable == ["a", "b", "c", "a", "s_1"]
