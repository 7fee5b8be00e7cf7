"""A reliability run: steady outside changes, daemons killed at random moments and at crash points, then convergence.

`chaos_run` is shared by the short tests (tests/e2e) and the long runs (bench/soak.py,
bench/faults.py). It returns a `RunReport` with the figures docs/reliability.md quotes;
it raises AssertionError when the final state is not exactly the sandbox's truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.e2e.harness import Backends, Daemon, daemons
from tests.e2e.world import (
    Account,
    AppointmentStream,
    ChangeStream,
    Row,
    booking_mismatches,
    make_renewals_due,
    stored,
    today_window,
    truth,
)

SYNC_POINTS = ("sync.after_page_fetched", "sync.after_rows_before_cursor")
PUSH_POINTS = ("push.mid_renewal",)
WRITE_POINTS = ("write.after_create_before_record",)
ALL_POINTS = SYNC_POINTS + WRITE_POINTS + PUSH_POINTS


@dataclass(frozen=True)
class RunConfig:
    """The shape of one run; everything random is drawn from `seed`."""

    seed: int = 1
    kills: int = 10  # random SIGKILLs (crash points come on top)
    crash_points: tuple[str, ...] = SYNC_POINTS
    processes: int = 1  # with 2, only the last one is ever killed
    gap: tuple[float, float] = (0.5, 2.5)  # seconds between two deaths
    changes_per_second: float = 10.0
    bookings: bool = True  # appointment writes through the API beside the outside changes
    crash_wait: float = 15.0  # how long an armed crash point may take to be hit
    converge_within: float = 60.0


@dataclass
class RunReport:
    """What a run did and how it ended."""

    kills: int = 0
    crash_deaths: int = 0
    crash_points_missed: list[str] = field(default_factory=list)
    changes: int = 0
    writes: int = 0
    seconds: float = 0.0
    converge_seconds: float = 0.0
    rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """One line for a benchmark's output."""
        return (
            f"kills={self.kills} crash_deaths={self.crash_deaths} changes={self.changes} writes={self.writes} "
            f"rows={self.rows} run={self.seconds:.1f}s converged_in={self.converge_seconds:.1f}s "
            + " ".join(f"{k}={v}" for k, v in self.extra.items())
        )


@dataclass
class World:
    """What the run changes and checks."""

    sandbox: Any
    sessions: async_sessionmaker[AsyncSession]
    http: aiohttp.ClientSession
    accounts: list[Account]
    # Final checks, run after convergence.
    checks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Called once the workload stops, before convergence is judged (e.g. clear faults).
    settle: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


async def _stream(
    world: World,
    changes: ChangeStream,
    bookings: AppointmentStream | None,
    cfg: RunConfig,
    stop: asyncio.Event,
    report: RunReport,
) -> None:
    while not stop.is_set():
        await changes.step()
        if bookings is not None:
            await bookings.step(world.http)
            report.writes = bookings.sent
        report.changes = changes.made
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1 / cfg.changes_per_second)


async def _crash_at(world: World, victim: Daemon, point: str, cfg: RunConfig, report: RunReport) -> None:
    """Restart the victim with `point` armed; wait for it to die there; bring it back."""
    await victim.kill()
    report.kills += 1
    await victim.start(crash_at=point)
    code = await _hit(world, victim, point, cfg.crash_wait)
    if code is None:
        report.crash_points_missed.append(point)
        await victim.kill()
    else:
        assert code == 137, f"{victim.name} died with {code} instead of at {point}:\n{victim.tail()}"
        report.crash_deaths += 1
    await victim.restart()


async def _hit(world: World, victim: Daemon, point: str, within: float) -> int | None:
    """Wait for the armed victim to exit; renewals are made due again and again for the push point
    (with two processes the survivor may take each batch first)."""
    if point != "push.mid_renewal":
        return await victim.wait_exit(within)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        await make_renewals_due(world.sessions)
        code = await victim.wait_exit(1.0)
        if code is not None:
            return code
    return None


async def _kill_loop(world: World, procs: list[Daemon], cfg: RunConfig, report: RunReport) -> None:
    rng = random.Random(cfg.seed)
    victim = procs[-1]
    plan: list[str | None] = [None] * cfg.kills + list(cfg.crash_points)
    rng.shuffle(plan)
    for point in plan:
        await asyncio.sleep(rng.uniform(*cfg.gap))
        if point is None:
            await victim.kill()
            report.kills += 1
            await victim.restart()
        else:
            await _crash_at(world, victim, point, cfg, report)


async def wait_converged(world: World, within: float) -> int:
    """Poll until every link's rows equal the truth; returns the row count, or raises with the diff."""
    window = today_window()
    truths = {a.link_id: await truth(world.sandbox, world.http, a, window) for a in world.accounts}
    deadline = time.monotonic() + within
    while True:
        diffs: dict[int, tuple[set[Row], set[Row]]] = {}
        for account in world.accounts:
            rows = await stored(world.sessions, account.link_id)
            want = truths[account.link_id]
            if rows != want:
                diffs[account.link_id] = (want - rows, rows - want)
        if not diffs:
            return sum(len(t) for t in truths.values())
        if time.monotonic() > deadline:
            summary = {k: {"missing": sorted(m)[:3], "extra": sorted(e)[:3]} for k, (m, e) in diffs.items()}
            raise AssertionError(f"unavailability differs from the sandbox on {len(diffs)} links: {summary}")
        await asyncio.sleep(0.5)


async def wait_bookings(world: World, bookings: AppointmentStream, within: float) -> None:
    """Poll until every confirmed booking has exactly one event (at its time) and cancelled ones none."""
    deadline = time.monotonic() + within
    while True:
        wrong = await booking_mismatches(world.sandbox, bookings)
        if not wrong:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(wrong)} of {len(bookings.bookings)} bookings are wrong: {wrong[:5]}")
        await asyncio.sleep(0.5)


@contextlib.asynccontextmanager
async def workload(world: World, procs: list[Daemon], cfg: RunConfig, jwt_secret: str) -> AsyncIterator[RunReport]:
    """Outside changes and bookings in the background while the body runs; then exact convergence."""
    report = RunReport()
    started = time.monotonic()
    changes = ChangeStream(world.sandbox, world.accounts, cfg.seed)
    bookings = None
    if cfg.bookings:
        bookings = AppointmentStream([d.url for d in procs], world.accounts, jwt_secret, cfg.seed + 2)
    stop = asyncio.Event()
    stream = asyncio.create_task(_stream(world, changes, bookings, cfg, stop, report))
    try:
        yield report
    finally:
        stop.set()
        await stream
    report.seconds = time.monotonic() - started
    settle = time.monotonic()
    for hook in world.settle:
        await hook()
    report.rows = await wait_converged(world, cfg.converge_within)
    if bookings is not None:
        await wait_bookings(world, bookings, cfg.converge_within)
    for check in world.checks:
        await check()
    report.converge_seconds = time.monotonic() - settle


async def chaos_run(cfg: RunConfig, backends: Backends, world: World, workdir: Path, **env: str) -> RunReport:
    """Run the workload while killing daemons as `cfg` says; then check exact convergence."""
    async with daemons(backends, world.sandbox, workdir, cfg.processes, **env) as procs:
        for d in procs:
            await d.start()
        for d in procs:
            await d.wait_ready()
        try:
            async with workload(world, procs, cfg, backends.jwt_secret) as report:
                await _kill_loop(world, procs, cfg, report)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\ndaemon logs: {', '.join(str(d.log_path) for d in procs)}") from None
        for d in procs:
            assert d.running, f"{d.name} died by itself:\n{d.tail()}"
            assert 500 not in d.statuses(), f"{d.name} answered 500 (a bug) {d.statuses()[500]} times: {d.log_path}"
    return report


# The failures a provider really produces, each an equal share of the injected ones.
FAULT_KINDS: tuple[dict[str, Any], ...] = (
    {"status": 429, "retry_after": 0.5},
    {"status": 500},
    {"status": 503},
    {"latency_ms": 2500},  # past the daemon's 2 s request timeout (harness.FAST)
    {"reset": True},
    {"reset": True, "after_commit": True},  # the provider did it, the answer is lost
)


async def inject_faults(sandbox: Any, fraction: float, seed: int) -> None:
    """Make `fraction` of all provider requests fail, spread evenly over FAULT_KINDS."""
    share = fraction / len(FAULT_KINDS)
    for i, kind in enumerate(FAULT_KINDS):
        # Rules are tried in order: each fires on its share of what the earlier ones let through.
        await sandbox.control.add_fault(fraction=share / (1 - share * i), seed=seed + i, **kind)


async def fault_count(sandbox: Any) -> int:
    """How many requests the live fault rules have failed."""
    return sum(int(rule["fired"]) for rule in await sandbox.control.faults())


async def request_count(sandbox: Any) -> int:
    """Provider requests in the sandbox's log (control routes excluded)."""
    return len(await sandbox.control.requests())
