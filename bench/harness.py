"""What every benchmark needs: PostgreSQL, Redis and the sandbox started, and Deps wired to them.

PostgreSQL is `CALSYNC_TEST_DATABASE_URL` (a fresh database is created on it and dropped
afterwards) or an embedded server; Redis is `CALSYNC_TEST_REDIS_URL` or embedded. Settings
point the provider clients at the in-process sandbox, exactly as `calsync serve` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import psutil
import psycopg
from redis.asyncio import Redis

from providers.sandbox import SandboxControl, start_sandbox
from worker.clock import SystemClock
from worker.config import Settings, with_overrides
from worker.crypto import TokenCipher, new_key
from worker.daemon import sandbox_provider_settings, settle_gc
from worker.db.engine import make_engine, make_sessions
from worker.db.migrate import upgrade_async
from worker.deps import Deps
from worker.embedded import embedded_postgres, embedded_redis


@dataclass
class RemoteSandbox:
    """A sandbox in its own process (`calsync sandbox`), as a real provider would be."""

    url: str
    urls: dict[str, str]
    control: SandboxControl
    pid: int

    def __getattr__(self, name: str) -> str:
        try:
            return self.__dict__["urls"][name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass
class Stack:
    """Running servers and the Deps a job needs."""

    deps: Deps
    sandbox: Any  # Sandbox, or RemoteSandbox with the same URLs and control client
    database_url: str


@contextlib.asynccontextmanager
async def remote_sandbox() -> AsyncIterator[RemoteSandbox]:
    """Run `calsync sandbox` as a child process on a free port, so its CPU is not ours."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", "sandbox", "--port", str(port), stdout=asyncio.subprocess.PIPE
    )
    try:
        urls: dict[str, str] = {}
        assert proc.stdout is not None
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
            if not line:
                raise RuntimeError("the sandbox exited before it was ready")
            if line.startswith("sandbox ready at "):
                url = line.removeprefix("sandbox ready at ")
                break
            name, _, value = line.partition(": ")
            urls[name] = value
        control = SandboxControl(url)
        try:
            yield RemoteSandbox(url, urls, control, proc.pid)
        finally:
            await control.close()
    finally:
        proc.terminate()
        await proc.wait()


@contextlib.contextmanager
def _database(root: Path) -> Iterator[str]:
    """A fresh database on the configured server, or an embedded server's database."""
    configured = os.environ.get("CALSYNC_TEST_DATABASE_URL")
    if not configured:
        with embedded_postgres(root / "pg") as url:
            yield url
        return
    name = f"calsync_bench_{secrets.token_hex(4)}"
    admin = configured.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(configured)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def _redis(root: Path) -> Iterator[str]:
    configured = os.environ.get("CALSYNC_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    with embedded_redis(root / "redis") as url:
        yield url


def sandbox_settings(base: Settings, sandbox: Any) -> Settings:
    """Provider settings pointing at the sandbox and its pre-registered OAuth clients."""
    return with_overrides(base, **sandbox_provider_settings(sandbox))


@contextlib.asynccontextmanager
async def bench_stack(*, separate_sandbox: bool = True, **overrides: dict[str, Any]) -> AsyncIterator[Stack]:
    """Start everything; `overrides` are Settings sections (e.g. sync={"concurrency": 8}).

    With `separate_sandbox` the emulated providers run in a child process, as real ones are
    remote: otherwise they would share one CPU core with the code being measured.
    """
    with tempfile.TemporaryDirectory(prefix="calsync-bench-") as tmp, contextlib.ExitStack() as servers:
        root = Path(tmp)
        db_url = servers.enter_context(_database(root))
        redis_url = servers.enter_context(_redis(root))
        await upgrade_async(db_url)
        async with contextlib.AsyncExitStack() as stack:
            if separate_sandbox:
                sandbox: Any = await stack.enter_async_context(remote_sandbox())
            else:
                sandbox = await start_sandbox()
                stack.push_async_callback(sandbox.stop)
            async with _deps(db_url, redis_url, sandbox, overrides) as deps:
                settle_gc()  # as the daemon does once it has started
                yield Stack(deps, sandbox, db_url)


@contextlib.asynccontextmanager
async def _deps(db_url: str, redis_url: str, sandbox: Any, overrides: dict[str, Any]) -> AsyncIterator[Deps]:
    """Deps over the servers, with settings pointing at the sandbox."""
    settings = with_overrides(
        sandbox_settings(Settings(), sandbox),
        database={"url": db_url},
        redis={"url": redis_url, "prefix": f"calsync-bench-{secrets.token_hex(3)}:"},
        crypto={"keys": [new_key()]},
        sandbox={"mode": "off"},
        logging={"level": "warning"},
        **overrides,
    )
    engine = make_engine(db_url, pool_size=20)
    redis = Redis.from_url(redis_url, decode_responses=True)
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
    try:
        yield Deps(
            settings=settings,
            engine=engine,
            sessions=make_sessions(engine),
            redis=redis,
            http=http,
            clock=SystemClock(),
            cipher=TokenCipher(settings.crypto.keys),
            worker_id="bench",
        )
    finally:
        await http.close()
        await redis.aclose()
        await engine.dispose()


@dataclass
class Cpu:
    """CPU seconds that calsync (this process), PostgreSQL and the sandbox spent over some wall time."""

    calsync: float = 0.0
    postgres: float = 0.0
    sandbox: float = 0.0
    wall: float = 0.0

    def __add__(self, other: Cpu) -> Cpu:
        return Cpu(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def per(self, events: int, per_events: int = 100_000) -> str:
        """Seconds per `per_events` events, as calsync / PostgreSQL / sandbox, and cores kept busy."""
        k = per_events / events
        cores = (self.calsync + self.postgres + self.sandbox) / self.wall if self.wall else 0.0
        return f"{self.calsync * k:.2f} / {self.postgres * k:.2f} / {self.sandbox * k:.2f} s on {cores:.1f} cores"


class CpuMeter:
    """Measures `Cpu` around a run. PostgreSQL is every process on this machine named postgres*
    (the embedded server's or the configured local one's); the sandbox is its child process, if
    it has one (else its CPU is calsync's)."""

    def __init__(self, sandbox: Any) -> None:
        self._sandbox_pid: int | None = getattr(sandbox, "pid", None)

    def _times(self) -> dict[int, tuple[str, float]]:
        out = {}
        for proc in psutil.process_iter(["name"]):
            if proc.pid == os.getpid():
                group = "calsync"
            elif proc.pid == self._sandbox_pid:
                group = "sandbox"
            elif (proc.info["name"] or "").startswith("postgres"):
                group = "postgres"
            else:
                continue
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                out[proc.pid] = (group, times.user + times.system)
        return out

    async def measure(self, run: Callable[[], Awaitable[object]]) -> Cpu:
        """Run once; a process that started meanwhile counts from zero, one that ended is lost."""
        before = self._times()
        started = time.perf_counter()
        await run()
        wall = time.perf_counter() - started
        used: dict[str, float] = {}
        for pid, (group, seconds) in self._times().items():
            used[group] = used.get(group, 0.0) + seconds - before.get(pid, (group, 0.0))[1]
        return Cpu(used.get("calsync", 0.0), used.get("postgres", 0.0), used.get("sandbox", 0.0), wall)


async def timed(run: Callable[[], Awaitable[object]]) -> float:
    """Seconds one run takes (wall clock)."""
    started = time.perf_counter()
    await run()
    return time.perf_counter() - started


def quiet_logs() -> None:
    """Benchmarks print a table; per-sync log lines would drown it (and cost time)."""
    from worker.logging import configure

    configure("warning", "console")
