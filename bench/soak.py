"""The long crash run: ≥ 50 SIGKILLs at random moments and at every named crash point, fixed seed.

Starts embedded PostgreSQL and Redis and the provider sandbox in this process, seeds
connected accounts on both providers, then runs tests/e2e/chaos.py twice: one daemon
killed again and again, and two daemons of which one is killed. Prints the kills
survived and whether the final state equals the sandbox's truth exactly (it raises if not).

    .venv/bin/python -m bench.soak [--kills 50] [--seed 1] [--accounts 6] [--only single|pair]
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from providers.sandbox import start_sandbox
from tests.e2e.chaos import ALL_POINTS, RunConfig, RunReport, World, chaos_run
from tests.e2e.harness import Backends
from tests.e2e.world import Account, seed_account
from worker import eventloop
from worker.crypto import TokenCipher, new_key
from worker.db.engine import make_engine, make_sessions
from worker.db.migrate import upgrade_async
from worker.embedded import embedded_postgres, embedded_redis

JWT_SECRET = "bench-soak-" + "x" * 32


@dataclass
class Bench:
    """Servers, sandbox and a database session factory for one long run."""

    backends: Backends
    sandbox: Any
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    http: aiohttp.ClientSession
    cipher: TokenCipher
    root: Path

    async def accounts(self, count: int) -> list[Account]:
        """`count` connected accounts, alternating Google and Outlook, in a few time zones."""
        zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]
        return [
            await seed_account(
                self.sessions,
                self.sandbox,
                self.cipher,
                provider=("google", "outlook")[i % 2],
                timezone=zones[i % len(zones)],
            )
            for i in range(count)
        ]

    def world(self, accounts: list[Account]) -> World:
        return World(self.sandbox, self.sessions, self.http, accounts)


@contextlib.asynccontextmanager
async def bench() -> AsyncIterator[Bench]:
    """Embedded PostgreSQL (migrated) and Redis, the sandbox, in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="calsync-soak-") as tmp:
        root = Path(tmp)
        with embedded_postgres(root / "pg") as db_url, embedded_redis(root / "redis") as redis_url:
            await upgrade_async(db_url)
            sandbox = await start_sandbox()
            engine = make_engine(db_url, pool_size=4)
            keys = (new_key(),)
            backends = Backends(db_url, redis_url, f"soak-{secrets.token_hex(3)}:", JWT_SECRET, keys)
            try:
                async with aiohttp.ClientSession() as http:
                    yield Bench(backends, sandbox, engine, make_sessions(engine), http, TokenCipher(keys), root)
            finally:
                await engine.dispose()
                await sandbox.stop()


async def soak(b: Bench, *, kills: int, seed: int, accounts: int, processes: int) -> RunReport:
    """One long run; raises AssertionError unless the end state is exact."""
    world = b.world(await b.accounts(accounts))
    cfg = RunConfig(
        seed=seed,
        kills=kills,
        crash_points=ALL_POINTS * 2,
        processes=processes,
        gap=(0.2, 3.0),
        converge_within=120,
    )
    return await chaos_run(cfg, b.backends, world, b.root / f"daemons-{processes}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=50, help="random SIGKILLs per run (crash points come on top)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--accounts", type=int, default=6)
    parser.add_argument("--only", choices=["single", "pair"], help="run one of the two variants")
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    variants = {"single": 1, "pair": 2}
    async with bench() as b:
        for name, processes in variants.items():
            if args.only and args.only != name:
                continue
            started = time.monotonic()
            report = await soak(b, kills=args.kills, seed=args.seed, accounts=args.accounts, processes=processes)
            deaths = report.kills + report.crash_deaths
            print(f"{name}: survived {deaths} deaths ({report.line()}) in {time.monotonic() - started:.0f}s")
            assert not report.crash_points_missed, f"crash points never reached: {report.crash_points_missed}"
            print(
                f"{name}: final state equals the sandbox's truth exactly: {report.rows} busy rows, "
                f"{report.writes} appointment writes; crash points missed: {report.crash_points_missed or 'none'}"
            )


if __name__ == "__main__":
    eventloop.run(main())
