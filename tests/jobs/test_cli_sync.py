"""`calsync sync RESOURCE`: the CLI records an interactive request; a worker's sync moves the links."""

from __future__ import annotations

import asyncio
import sys

from jobs import sync
from tests.conftest import make_deps
from tests.e2e.test_cli_status import REPO, cli_env
from tests.jobs.conftest import Connect, day_start
from worker.config import Settings
from worker.deps import Deps


async def test_sync_command_waits_for_the_daemon_and_shows_progress(
    connect: Connect, deps: Deps, database_url: str
) -> None:
    calendar = await connect("google")
    await sync.sync_link(deps, calendar.link_id)  # a first sync: the CLI must wait for a *new* one
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "worker", "--config", str(REPO / "worker.toml"), "sync", calendar.resource_id, "--wait", "30"),
        env=cli_env(database_url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    first = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    assert first.startswith(f"sync requested for 1 calendars of {calendar.resource_id}")
    worker = make_deps(deps.settings, deps.engine, deps.redis, deps.http, worker_id="worker-cli-test")
    assert (await sync.run_once(worker)).get("claimed") == 1  # due only because the CLI asked
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert f"[{'#' * 30}] 1/1  #{calendar.link_id} " in out.decode()
    assert out.decode().rstrip().endswith("synced")


async def test_sync_command_times_out_without_a_daemon(connect: Connect, database_url: str) -> None:
    calendar = await connect("outlook")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "worker", "--config", str(REPO / "worker.toml"), "sync", calendar.resource_id, "--wait", "1"),
        env=cli_env(database_url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert "timed out: is `calsync serve` running" in out.decode()


def env_for(settings: Settings) -> dict[str, str]:
    """The test settings as CALSYNC_* variables: this database, Redis keyspace, keys and sandbox."""
    env = cli_env(settings.database.url)
    env |= {
        "CALSYNC_REDIS__URL": settings.redis.url,
        "CALSYNC_REDIS__PREFIX": settings.redis.prefix,
        "CALSYNC_CRYPTO__KEYS": ",".join(k.get_secret_value() for k in settings.crypto.keys),
    }
    for section in ("google", "outlook"):
        for key, value in getattr(settings, section).model_dump().items():
            if isinstance(value, str) and value:
                env[f"CALSYNC_{section.upper()}__{key.upper()}"] = value
        secret = getattr(settings, section).client_secret.get_secret_value()
        env[f"CALSYNC_{section.upper()}__CLIENT_SECRET"] = secret
    return env


async def test_sync_command_with_a_range_runs_the_bulk_job_with_a_progress_bar(connect: Connect, deps: Deps) -> None:
    calendar = await connect("google")
    await calendar.create(calendar.timed(day_start(3).replace(hour=9)))
    await calendar.create(calendar.timed(day_start(40).replace(hour=9)))  # outside the range: not listed
    start, end = day_start(1).date(), day_start(10).date()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "worker", "--config", str(REPO / "worker.toml"), "sync", calendar.resource_id),
        *("--start", start.isoformat(), "--end", end.isoformat()),
        env=env_for(deps.settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 0, text + err.decode()
    assert f"[{'-' * 30}] 0/1" in text and f"[{'#' * 30}] 1/1" in text
    assert f"#{calendar.link_id} {calendar.calendar_id}: done, 1 events, +1 ~0 -0" in text
    assert text.rstrip().endswith("bulk sync succeeded")
    assert len(await calendar.rows()) == 1


async def test_sync_command_with_a_range_refuses_a_bad_range(deps: Deps) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "worker", "--config", str(REPO / "worker.toml"), "sync", "nobody"),
        *("--start", "2026-02-01", "--end", "2026-01-01"),
        env=env_for(deps.settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2 and "--end must be after --start" in err.decode()
