"""SIGKILL the daemon at random moments and at each named crash point: nothing lost, nothing doubled.

Two daemon processes share the database; the second is killed again and again (10 deaths,
fixed seed) while the sandbox's users keep editing their calendars. At the end the stored
unavailability must equal the sandbox's truth exactly. The long version is bench/soak.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.e2e.chaos import ALL_POINTS, RunConfig, World, chaos_run
from tests.e2e.harness import Backends
from tests.e2e.world import seed_account
from worker.crypto import TokenCipher

ACCOUNTS = [("google", "UTC"), ("google", "Europe/Berlin"), ("outlook", "UTC"), ("outlook", "America/New_York")]


async def test_kills_at_random_and_at_crash_points_lose_nothing(
    backends: Backends,
    own_sandbox: Any,
    sessions: async_sessionmaker[AsyncSession],
    cipher: TokenCipher,
    http: aiohttp.ClientSession,
    workdir: Path,
) -> None:
    accounts = [await seed_account(sessions, own_sandbox, cipher, provider=p, timezone=tz) for p, tz in ACCOUNTS]
    world = World(own_sandbox, sessions, http, accounts)
    cfg = RunConfig(seed=11, kills=5, crash_points=ALL_POINTS, processes=2, gap=(0.3, 1.2))
    report = await chaos_run(cfg, backends, world, workdir)
    print(report.line())
    assert report.kills + report.crash_deaths >= 10
    assert not report.crash_points_missed, f"crash points never reached: {report.crash_points_missed}"
    assert report.changes > 50 and report.rows > 0 and report.writes > 20
