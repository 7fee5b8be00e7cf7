"""Syncs and the events they apply are counted by provider and outcome."""

from __future__ import annotations

from datetime import timedelta

from jobs import sync
from worker.metrics import REGISTRY

from .conftest import Connect, day_start


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_sync_outcomes_and_ingested_events_are_counted(connect: Connect, provider: str) -> None:
    cal = await connect(provider)
    await cal.create(cal.timed(day_start(2) + timedelta(hours=9)))
    synced = _count("calsync_syncs_total", provider=provider, outcome="synced")
    added = _count("calsync_events_ingested_total", provider=provider, change="added")
    durations = _count("calsync_sync_duration_seconds_count", provider=provider)

    assert (await sync.sync_link(cal.deps, cal.link_id)).added == 1

    assert _count("calsync_syncs_total", provider=provider, outcome="synced") == synced + 1
    assert _count("calsync_events_ingested_total", provider=provider, change="added") == added + 1
    assert _count("calsync_sync_duration_seconds_count", provider=provider) == durations + 1
