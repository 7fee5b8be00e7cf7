"""Composition root: every long-lived resource entered in one AsyncExitStack, then serve.

Order of start: embedded servers (when no URLs), development secrets, provider sandbox
(when no client ids), database (migrated or checked at head), Redis, HTTP client, web
server, scheduler. Shutdown runs it backwards: stop intake, let jobs finish within the
grace period, close pools, stop embedded servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

from jobs.registry import build_scheduler
from worker.api.app import build_app
from worker.clock import SystemClock
from worker.config import Settings, with_overrides
from worker.crypto import TokenCipher
from worker.db.engine import current_revision, head_revision, make_engine, make_sessions
from worker.db.migrate import upgrade_async
from worker.deps import Deps
from worker.embedded import embedded_postgres, embedded_redis, with_development_secrets
from worker.logging import get_logger

if TYPE_CHECKING:
    from providers.sandbox import Sandbox

log = get_logger(__name__)


class StartupError(Exception):
    """The daemon cannot start; the message says what to do."""


@dataclass(frozen=True)
class Running:
    deps: Deps
    url: str
    sandbox: Sandbox | None = None  # the in-process provider sandbox, when one was started (demo, tests)


def _bind(host: str, port: int) -> socket.socket:
    """Bind before building the app, so public_url is known when port is 0."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def sandbox_provider_settings(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    """The [google] and [outlook] settings that point at a sandbox and its built-in OAuth clients."""
    return {
        "google": {
            "client_id": "sandbox-google-client",
            "client_secret": "sandbox-google-secret",
            "auth_url": sandbox.google_auth_url,
            "token_url": sandbox.google_token_url,
            "revoke_url": sandbox.google_revoke_url,
            "userinfo_url": sandbox.google_userinfo_url,
            "api_base": sandbox.google_api,
        },
        "outlook": {
            "client_id": "sandbox-ms-client",
            "client_secret": "sandbox-ms-secret",
            "authority": sandbox.ms_authority,
            "api_base": sandbox.graph_api,
        },
    }


async def _start_sandbox(
    stack: contextlib.AsyncExitStack, settings: Settings, callback: str
) -> tuple[Settings, Sandbox | None]:
    """Start the provider sandbox for each provider without client credentials."""
    need_google = not settings.google.client_id
    need_outlook = not settings.outlook.client_id
    if settings.sandbox.mode == "off" or not (need_google or need_outlook):
        return settings, None
    from providers.sandbox import start_sandbox

    sandbox = await start_sandbox(port=settings.sandbox.port)
    stack.push_async_callback(sandbox.stop)
    every = sandbox_provider_settings(sandbox)
    overrides = {name: every[name] for name, needed in (("google", need_google), ("outlook", need_outlook)) if needed}
    for name, wire in (("google", "google"), ("outlook", "microsoft")):
        if name in overrides:
            o = overrides[name]
            await sandbox.control.register_client(wire, o["client_id"], o["client_secret"], [callback])
    log.info("sandbox.started", url=sandbox.url, providers=sorted(overrides))
    return with_overrides(settings, **overrides), sandbox


async def _prepare_database(settings: Settings, engine: Any) -> None:
    url = settings.database.url
    if settings.database.auto_migrate:
        await upgrade_async(url)
        return
    current, head = await current_revision(engine), head_revision(url)
    if current != head:
        raise StartupError(f"database schema is at {current or 'nothing'}, code needs {head}: run `calsync migrate`")


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Running]:
    """Everything the daemon needs, started; torn down in reverse on exit."""
    async with contextlib.AsyncExitStack() as stack:
        data_dir = Path(settings.embedded.data_dir)
        settings = with_development_secrets(settings)
        if settings.embedded_database:
            url = stack.enter_context(embedded_postgres(data_dir))
            settings = with_overrides(settings, database={"url": url, "auto_migrate": True})
        if settings.embedded_redis:
            url = stack.enter_context(embedded_redis(data_dir))
            settings = with_overrides(settings, redis={"url": url})

        sock = _bind(settings.server.host, settings.server.port)
        host, port = sock.getsockname()[:2]
        local_url = f"http://{host}:{port}"
        if not settings.server.public_url:
            settings = with_overrides(settings, server={"public_url": local_url})
        settings, sandbox = await _start_sandbox(stack, settings, settings.server.public_url + "/oauth/callback")

        engine = make_engine(settings.database.url, pool_size=settings.database.pool_size)
        stack.push_async_callback(engine.dispose)
        await _prepare_database(settings, engine)
        redis = Redis.from_url(settings.redis.url, decode_responses=True, socket_timeout=5)
        stack.push_async_callback(redis.aclose)
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.http.timeout_seconds))
        stack.push_async_callback(http.close)

        deps = Deps(
            settings=settings,
            engine=engine,
            sessions=make_sessions(engine),
            redis=redis,
            http=http,
            clock=SystemClock(),
            cipher=TokenCipher(settings.crypto.keys),
            worker_id=f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}",
        )
        # Registered before the web runner, so it runs after intake has stopped.
        stack.push_async_callback(deps.tasks.drain, settings.server.shutdown_grace_seconds)
        runner = web.AppRunner(build_app(deps), handle_signals=False, access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await web.SockSite(runner, sock, shutdown_timeout=settings.server.shutdown_grace_seconds).start()

        scheduler = build_scheduler(deps)
        scheduler.start()
        stack.callback(scheduler.shutdown, wait=False)
        settle_gc()
        log.info(
            "daemon.ready",
            url=local_url,
            public_url=settings.server.public_url,
        )
        yield Running(deps=deps, url=local_url, sandbox=sandbox)
        log.info("daemon.stopping")


def settle_gc() -> None:
    """Tune the cycle collector for a long-running syncer, once start-up is done.

    What start-up built (modules, table metadata, pools) lives as long as the process: frozen,
    full collections stop rescanning it. A sync allocates about twenty containers per event, so
    the default young-generation threshold (700) ran the collector every few dozen events; at
    50,000 it runs a few times per 10,000-event calendar (bench/ingest: ~10% less CPU per sync).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running(settings):
        await stop.wait()
    log.info("daemon.stopped")
