"""`calsync status` as a user runs it: the operator summary printed from the database."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.status_data import seed_status
from worker.crypto import new_key

REPO = Path(__file__).resolve().parents[2]


def cli_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")}
    # A deployment with a database URL must also configure its secrets; any will do here.
    secrets = {"CALSYNC_AUTH__JWT_SECRET": "s" * 40, "CALSYNC_CRYPTO__KEYS": new_key()}
    return env | secrets | {"CALSYNC_DATABASE__URL": database_url}


async def run_cli(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker",
        "--config",
        str(REPO / "worker.toml"),
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return int(proc.returncode or 0), out.decode(), err.decode()


async def test_status_prints_the_summary(
    database_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    seeded = await seed_status(sessions, datetime.now(UTC))
    code, out, err = await run_cli("status", env=cli_env(database_url), cwd=tmp_path)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("calsync status at ")
    assert "  reauth_required  1" in lines and "  active           1" in lines
    assert "Calendars (3 of 3, most troubled first)" in out
    failing = next(i for i, line in enumerate(lines) if f"#{seeded.failing_link} " in line)
    assert "failing" in lines[failing + 1] and "3 failures" in lines[failing + 1]
    assert "  total 2, oldest 10m ago" in lines
    assert "  waiting_calendar 1" in lines
    assert "  pending 1, failed 1" in lines
    assert "Quarantined events: 1" in lines
