"""Session fixtures: real PostgreSQL and Redis (embedded, or CALSYNC_TEST_*_URL), the sandbox.

Isolation: one template database migrated once per session; each test module gets its own
database cloned from it, and its own Redis key prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import psycopg
import pytest
from aiohttp import web
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from worker import eventloop
from worker.api.app import build_app
from worker.api.auth import mint_token
from worker.clock import SystemClock
from worker.config import Settings, with_overrides
from worker.crypto import TokenCipher, new_key
from worker.daemon import sandbox_provider_settings
from worker.db.engine import make_engine, make_sessions
from worker.db.migrate import upgrade
from worker.deps import Deps
from worker.embedded import embedded_postgres, embedded_redis

TEST_JWT_SECRET = "test-secret-" + "x" * 32

# Property tests share two cores with servers and other tests: judge them by results, not speed.
hypothesis_settings.register_profile(
    "calsync", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
hypothesis_settings.load_profile("calsync")


# Every async test runs on the loop the daemon runs on (uvloop where installed), through the
# loop policy pytest-asyncio's runners ask. Not its loop-factory hook: that tears down and
# rebuilds session fixtures around every sync test that uses one (pytest-asyncio#1501).
asyncio.set_event_loop_policy(eventloop.policy())


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="calsync-test-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def pg_server_url(tmp_root: Path) -> Iterator[str]:
    """A PostgreSQL server URL whose role may CREATE DATABASE."""
    configured = os.environ.get("CALSYNC_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with embedded_postgres(tmp_root / "pg") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(tmp_root: Path) -> Iterator[str]:
    configured = os.environ.get("CALSYNC_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    with embedded_redis(tmp_root / "redis") as url:
        yield url


def _admin(pg_server_url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(_psycopg_url(pg_server_url), autocommit=True)


@contextlib.contextmanager
def fresh_database(pg_server_url: str, *, template: str | None = None) -> Iterator[str]:
    """A new empty (or cloned) database, dropped afterwards."""
    name = f"calsync_t_{secrets.token_hex(6)}"
    with _admin(pg_server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield _with_database(pg_server_url, name)
    finally:
        with _admin(pg_server_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def template_database(pg_server_url: str) -> Iterator[str]:
    """A database at head, cloned for each test module."""
    with fresh_database(pg_server_url) as url:
        upgrade(url)
        yield urlsplit(url).path.lstrip("/")


@pytest.fixture(scope="module")
def database_url(pg_server_url: str, template_database: str) -> Iterator[str]:
    with fresh_database(pg_server_url, template=template_database) as url:
        yield url


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database_url, pool_size=5)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="module")
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessions(engine)


@pytest.fixture(scope="module")
def redis_prefix() -> str:
    return f"calsync-test-{secrets.token_hex(4)}:"


@pytest.fixture(scope="module")
async def redis(redis_url: str, redis_prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    keys = [k async for k in client.scan_iter(match=f"{redis_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture(scope="session")
async def sandbox() -> AsyncIterator[Any]:
    """The provider sandbox on a free port, for the whole session (reset it per test as needed)."""
    from providers.sandbox import start_sandbox

    sb = await start_sandbox()
    yield sb
    await sb.stop()


@pytest.fixture(scope="module")
def settings(database_url: str, redis_url: str, redis_prefix: str, tmp_root: Path) -> Settings:
    """Settings for in-process tests: real servers, a test JWT secret, short cadences."""
    base = Settings()
    return with_overrides(
        base,
        database={"url": database_url},
        redis={"url": redis_url, "prefix": redis_prefix},
        embedded={"data_dir": str(tmp_root / "data")},
        auth={"jwt_secret": TEST_JWT_SECRET, "admin_token": "test-admin-token"},
        crypto={"keys": [new_key()]},
        sandbox={"mode": "off"},
        http={"retry_base_seconds": 0.01, "retry_cap_seconds": 0.2, "retry_deadline_seconds": 10},
        sync={"backoff_base_seconds": 0.1, "backoff_cap_seconds": 1.0, "sweep_seconds": 0.05},
    )


def sandbox_settings(settings: Settings, sandbox: Any, public_url: str) -> Settings:
    """Point the Google and Outlook settings at the sandbox (as `calsync serve` does)."""
    return with_overrides(settings, server={"public_url": public_url}, **sandbox_provider_settings(sandbox))


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_deps(settings: Settings, engine: AsyncEngine, redis: Redis, http: aiohttp.ClientSession, **kw: Any) -> Deps:
    return Deps(
        settings=settings,
        engine=engine,
        sessions=make_sessions(engine),
        redis=redis,
        http=http,
        clock=kw.pop("clock", SystemClock()),
        cipher=TokenCipher(settings.crypto.keys),
        worker_id=kw.pop("worker_id", f"test:{secrets.token_hex(3)}"),
        **kw,
    )


@dataclass
class Api:
    """The control API served on a real port, with a client session and token minting."""

    url: str
    deps: Deps
    session: aiohttp.ClientSession

    def token(self, company_id: str, *, ttl: int = 600) -> str:
        return mint_token(self.deps.settings.auth, company_id=company_id, ttl_seconds=ttl, now=int(time.time()))

    def headers(self, company_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(company_id)}"}


@contextlib.asynccontextmanager
async def serve_api(deps: Deps) -> AsyncIterator[str]:
    """Run build_app(deps) on 127.0.0.1 and a free port; yield its base URL."""
    runner = web.AppRunner(build_app(deps), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
async def api(settings: Settings, engine: AsyncEngine, redis: Redis, http: aiohttp.ClientSession) -> AsyncIterator[Api]:
    """The API with providers pointing nowhere (for tests that need no provider)."""
    deps = make_deps(settings, engine, redis, http)
    async with serve_api(deps) as url:
        yield Api(url=url, deps=deps, session=http)
    await deps.tasks.drain(1.0)
