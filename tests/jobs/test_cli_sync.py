"""`calsync sync RESOURCE`: the CLI records an interactive request; a worker's sync moves the links."""

from __future__ import annotations

import asyncio
import sys

from jobs import sync
from tests.conftest import make_deps
from tests.e2e.test_cli_status import REPO, cli_env
from tests.jobs.conftest import Connect
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
