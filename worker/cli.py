"""The calsync command line: serve, migrate, token, version (and more as the daemon grows)."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date
from importlib.metadata import version as package_version
from pathlib import Path

from worker import eventloop
from worker import logging as calsync_logging
from worker.config import ConfigError, Settings, load, with_overrides

EXIT_CONFIG = 2


def _settings(args: argparse.Namespace) -> Settings:
    settings = load(args.config)
    # The daemon logs to stdout; other commands keep stdout for their output (a token, a table).
    stream = sys.stdout if args.command == "serve" else sys.stderr
    calsync_logging.configure(settings.logging.level, settings.logging.format, stream)
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM/SIGINT."""
    from worker.daemon import StartupError, serve

    settings = _settings(args)
    if args.port is not None:
        settings = with_overrides(settings, server={"port": args.port})
    try:
        eventloop.run(serve(settings))
    except StartupError as exc:
        print(f"calsync: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Upgrade the database schema to head (the embedded database when none is configured)."""
    from worker.db.migrate import upgrade
    from worker.embedded import embedded_postgres

    settings = _settings(args)
    if settings.database.url:
        upgrade(settings.database.url, args.revision)
    else:
        with embedded_postgres(Path(settings.embedded.data_dir)) as url:
            upgrade(url, args.revision)
    print(f"schema at {args.revision}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Print a development bearer JWT for a company."""
    from worker.api.auth import mint_token
    from worker.embedded import with_development_secrets

    settings = with_development_secrets(_settings(args))
    if not settings.auth.jwt_secret.get_secret_value():
        raise ConfigError("auth.jwt_secret", "needed to mint a token (HS256)")
    print(mint_token(settings.auth, company_id=args.company, ttl_seconds=args.ttl, now=int(time.time())))
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Run the provider sandbox alone (Google and Microsoft emulators) until Ctrl-C."""
    import contextlib

    from providers.sandbox.server import serve as serve_sandbox

    with contextlib.suppress(KeyboardInterrupt):
        eventloop.run(serve_sandbox(args.host, args.port))
    return 0


def cmd_rotate_keys(args: argparse.Namespace) -> int:
    """Re-encrypt every stored token and secret under the first key of crypto.keys."""
    from worker.crypto import TokenCipher
    from worker.db.engine import make_engine, make_sessions
    from worker.db.key_rotation import rotate_all
    from worker.embedded import embedded_postgres, with_development_secrets

    settings = with_development_secrets(_settings(args))
    cipher = TokenCipher(settings.crypto.keys)

    async def run(url: str) -> int:
        engine = make_engine(url, pool_size=1)
        try:
            async with make_sessions(engine)() as session, session.begin():
                return await rotate_all(session=session, rotate=cipher.rotate)
        finally:
            await engine.dispose()

    if settings.database.url:
        count = eventloop.run(run(settings.database.url))
    else:
        with embedded_postgres(Path(settings.embedded.data_dir)) as url:
            count = eventloop.run(run(url))
    print(f"re-encrypted {count} stored secrets under the first key; older keys can now be removed")
    return 0


def say(line: str) -> None:
    """Print a progress line at once (stdout may be a pipe)."""
    print(line, flush=True)


def _database(settings: Settings) -> contextlib.AbstractContextManager[str]:
    """The configured database URL, or the embedded server (shared with a running daemon)."""
    from worker.embedded import embedded_postgres

    if settings.database.url:
        return contextlib.nullcontext(settings.database.url)
    return embedded_postgres(Path(settings.embedded.data_dir))


def cmd_status(args: argparse.Namespace) -> int:
    """Print the operator summary (what /status shows), read from the database."""
    from datetime import UTC, datetime

    from worker.db.engine import make_engine, make_sessions
    from worker.db.status import summary
    from worker.status_text import render

    async def run(url: str) -> str:
        engine = make_engine(url, pool_size=1)
        try:
            async with make_sessions(engine)() as session, session.begin():
                return render(await summary(session=session, now=datetime.now(UTC), limit=args.limit))
        finally:
            await engine.dispose()

    with _database(_settings(args)) as url:
        print(eventloop.run(run(url)))
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    """Force a sync of a resource's read calendars; a running daemon does the work."""
    if args.start or args.end:
        return _bulk_sync(args)
    from worker import resync
    from worker.db.engine import make_engine, make_sessions

    async def run(url: str) -> int:
        engine = make_engine(url, pool_size=1)
        try:
            sessions = make_sessions(engine)
            marks = await resync.request(sessions, args.resource)
            if not marks:
                print(f"resource {args.resource} has no active read calendars")
                return 1
            say(f"sync requested for {len(marks)} calendars of {args.resource}; waiting up to {args.wait:g}s")
            outcomes = await resync.wait(sessions, args.resource, marks, wait_seconds=args.wait, report=say)
        finally:
            await engine.dispose()
        if len(outcomes) < len(marks):
            print("timed out: is `calsync serve` running against this database?")
            return 1
        return 0 if all(o == "synced" for o in outcomes.values()) else 1

    with _database(_settings(args)) as url:
        return eventloop.run(run(url))


def _bulk_sync(args: argparse.Namespace) -> int:
    """`calsync sync RESOURCE --start --end`: the createUnavailabilityBulk job over a range, with progress."""
    from datetime import timedelta

    from worker import resync
    from worker.embedded import embedded_postgres, embedded_redis, with_development_secrets

    settings = with_development_secrets(_settings(args))
    start = args.start or date.today()
    end = args.end or start + timedelta(days=1)
    if end <= start or (end - start).days > settings.sync.bulk_max_days:
        print(f"calsync: --end must be after --start, at most {settings.sync.bulk_max_days} days", file=sys.stderr)
        return EXIT_CONFIG

    async def run(resolved: Settings) -> str:
        async with resync.cli_deps(resolved) as deps:
            say(f"syncing {args.resource} from {start} to {end} (end excluded)")
            return await resync.bulk(deps, args.resource, start, end, report=say)

    with contextlib.ExitStack() as stack:
        data_dir = Path(settings.embedded.data_dir)
        urls: dict[str, dict[str, object]] = {}
        if not settings.database.url:
            urls["database"] = {"url": stack.enter_context(embedded_postgres(data_dir))}
        if not settings.redis.url:
            urls["redis"] = {"url": stack.enter_context(embedded_redis(data_dir))}
        status = eventloop.run(run(with_overrides(settings, **urls)))
    say(f"bulk sync {status}")
    return 0 if status == "succeeded" else 1


def cmd_demo(args: argparse.Namespace) -> int:
    """A guided run: embedded servers and sandbox, both providers, events, an appointment."""
    import tempfile

    from worker.demo import demo_settings, run_demo

    settings = _settings(args)
    if not args.verbose:  # the daemon's own log lines would drown the walkthrough
        calsync_logging.configure("warning", settings.logging.format, sys.stderr)
    with tempfile.TemporaryDirectory(prefix="calsync-demo-") as tmp:
        tally = eventloop.run(run_demo(demo_settings(settings, args.data_dir or tmp), say))
    return 1 if tally.failed else 0


def cmd_resource(args: argparse.Namespace) -> int:
    """Add a resource, or remove one after disconnecting its calendars (grants revoked first)."""
    import contextlib
    import uuid

    import aiohttp
    from pydantic import ValidationError
    from redis.asyncio import Redis
    from sqlalchemy.exc import IntegrityError

    from jobs.connect import remove_resource
    from worker.api.schemas_calendars import CreateResource
    from worker.clock import SystemClock
    from worker.crypto import TokenCipher
    from worker.db.engine import make_engine, make_sessions
    from worker.db.resources import create_resource
    from worker.deps import Deps
    from worker.embedded import embedded_postgres, embedded_redis, with_development_secrets

    settings = with_development_secrets(_settings(args))
    if args.action == "add":
        try:
            wanted = CreateResource(id=args.id, name=args.name, timezone=args.timezone)
        except ValidationError as exc:
            print(f"calsync: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}", file=sys.stderr)
            return EXIT_CONFIG

    async def run(db_url: str, redis_url: str) -> int:
        engine = make_engine(db_url, pool_size=1)
        redis = Redis.from_url(redis_url, decode_responses=True)
        try:
            async with aiohttp.ClientSession() as http:
                deps = Deps(
                    settings=settings,
                    engine=engine,
                    sessions=make_sessions(engine),
                    redis=redis,
                    http=http,
                    clock=SystemClock(),
                    cipher=TokenCipher(settings.crypto.keys),
                    worker_id="cli:resource",
                )
                if args.action == "remove":
                    removed = await remove_resource(deps, args.id, wait=True)
                    print(f"removed {args.id}" if removed else f"calsync: no resource {args.id}")
                    return 0 if removed else 1
                resource_id = wanted.id or uuid.uuid4().hex
                try:
                    async with deps.sessions.begin() as session:
                        await create_resource(
                            session=session,
                            resource_id=resource_id,
                            company_id=args.company,
                            name=wanted.name,
                            timezone=wanted.timezone,
                        )
                except IntegrityError:
                    print(f"calsync: resource {resource_id} already exists", file=sys.stderr)
                    return 1
                print(resource_id)
                return 0
        finally:
            await redis.aclose()
            await engine.dispose()

    with contextlib.ExitStack() as stack:
        data_dir = Path(settings.embedded.data_dir)
        db_url = settings.database.url or stack.enter_context(embedded_postgres(data_dir))
        redis_url = settings.redis.url or stack.enter_context(embedded_redis(data_dir))
        return eventloop.run(run(db_url, redis_url))


def cmd_version(args: argparse.Namespace) -> int:
    """Print the installed calsync version."""
    print(f"calsync {package_version('calsync')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calsync", description="External calendar sync daemon.")
    parser.add_argument("--config", help="TOML settings file (default: $CALSYNC_CONFIG or ./worker.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    serve = add("serve", cmd_serve, "Run the daemon: API, webhooks, scheduler (embedded servers if unconfigured).")
    serve.add_argument("--port", type=int, help="override server.port")
    migrate = add("migrate", cmd_migrate, "Upgrade the database schema (default: to head).")
    migrate.add_argument("revision", nargs="?", default="head")
    token = add("token", cmd_token, "Mint a development JWT for a company (HS256 with auth.jwt_secret).")
    token.add_argument("--company", required=True, help="company id put in the company claim")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until the token expires")
    sandbox = add("sandbox", cmd_sandbox, "Run the Google and Microsoft provider emulators alone.")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8765)
    add("rotate-keys", cmd_rotate_keys, "Re-encrypt stored tokens and secrets under the first crypto key.")
    status = add("status", cmd_status, "Print connections, calendars, outbox and backlog (what /status shows).")
    status.add_argument("--limit", type=int, default=50, help="calendars listed, most troubled first")
    sync = add("sync", cmd_sync, "Force a sync of a resource's read calendars (a running daemon does it).")
    sync.add_argument("resource", help="resource id")
    sync.add_argument("--start", type=date.fromisoformat, help="first day of a range to sync (YYYY-MM-DD)")
    sync.add_argument("--end", type=date.fromisoformat, help="day after the range (YYYY-MM-DD)")
    sync.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the daemon")
    demo = add("demo", cmd_demo, "A guided run on embedded servers and the sandbox, printing each API call.")
    demo.add_argument("--data-dir", help="keep the demo's data here (default: a temporary directory)")
    demo.add_argument("--verbose", action="store_true", help="also show the daemon's log lines")
    resource = add("resource", cmd_resource, "Add a resource, or remove one (its calendars are disconnected first).")
    resource_sub = resource.add_subparsers(dest="action", required=True, metavar="ACTION")
    resource_add = resource_sub.add_parser("add", help="create a resource of a company; prints its id")
    resource_add.add_argument("--company", required=True, help="the owning company id (created if new)")
    resource_add.add_argument("--id", help="the resource id (default: generated)")
    resource_add.add_argument("--name", default="", help="a display name")
    resource_add.add_argument("--timezone", default="UTC", help="IANA time zone (default UTC)")
    resource_remove = resource_sub.add_parser("remove", help="disconnect every calendar, then delete")
    resource_remove.add_argument("id", help="the resource id")
    add("version", cmd_version, "Print the version.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `calsync` console script and `python -m worker`."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"calsync: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
