"""20% of provider calls fail (429 + Retry-After, 500, 503, timeouts, resets): the state still converges exactly.

Retries must stay bounded: the run reports provider requests per outside change and fails
on a retry storm. The long version is bench/faults.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.e2e.chaos import RunConfig, World, chaos_run, fault_count, inject_faults, request_count
from tests.e2e.harness import Backends
from tests.e2e.world import seed_account
from worker.crypto import TokenCipher

# A change is an outside edit or an appointment write. Each link is also polled every second
# whatever happens, and retrying 20% failures adds about a quarter on top (runs measure about
# 1.3). A storm (retries without backoff, a full re-listing after every failure) multiplies
# it; 2.0 leaves room for a slow machine and still catches one.
MAX_REQUESTS_PER_CHANGE = 2.0


async def test_twenty_percent_provider_failures_converge_without_retry_storm(
    backends: Backends,
    own_sandbox: Any,
    sessions: async_sessionmaker[AsyncSession],
    cipher: TokenCipher,
    http: aiohttp.ClientSession,
    workdir: Path,
) -> None:
    accounts = [await seed_account(sessions, own_sandbox, cipher, provider=p) for p in ("google", "outlook") * 2]
    counts: dict[str, int] = {}

    async def clear_faults() -> None:
        counts["faults"] = await fault_count(own_sandbox)
        counts["requests"] = await request_count(own_sandbox)
        await own_sandbox.control.clear_faults()

    world = World(own_sandbox, sessions, http, accounts, settle=[clear_faults])
    await inject_faults(own_sandbox, 0.2, seed=7)
    cfg = RunConfig(seed=7, kills=3, crash_points=(), gap=(3.0, 5.0))
    report = await chaos_run(cfg, backends, world, workdir)
    per_change = counts["requests"] / (report.changes + report.writes)
    print(report.line(), f"faults={counts['faults']} requests={counts['requests']} per_change={per_change:.2f}")
    assert counts["faults"] >= 0.1 * counts["requests"], "the fault rules did not fire as planned"
    assert per_change <= MAX_REQUESTS_PER_CHANGE
