"""The CLI as a user runs it: sandbox standalone, token, version, --help."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import aiohttp
import jwt

REPO = Path(__file__).resolve().parents[2]


async def test_sandbox_command_serves_google_and_microsoft() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", "sandbox", "--port", "0", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        url = ""
        while not url:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "sandbox exited before it was ready"
            if line.startswith("sandbox ready at "):
                url = line.removeprefix("sandbox ready at ").strip()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/calendar/v3/users/me/calendarList") as resp:
                assert resp.status == 401
                assert (await resp.json())["error"]["errors"][0]["reason"] == "authError"
            async with session.get(f"{url}/v1.0/me") as resp:
                assert resp.status == 401
                assert (await resp.json())["error"]["code"] == "InvalidAuthenticationToken"
    finally:
        proc.terminate()
        await proc.wait()


def test_token_mints_a_verifiable_jwt(tmp_path: Path) -> None:
    env = {"CALSYNC_AUTH__JWT_SECRET": "s" * 40, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "worker", "--config", str(REPO / "worker.toml"), "token", "--company", "acme"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=True,
    ).stdout.strip()
    claims = jwt.decode(out, "s" * 40, algorithms=["HS256"], audience="calsync", issuer="calsync-dev")
    assert claims["companyId"] == "acme"


def test_every_subcommand_has_help() -> None:
    top = subprocess.run([sys.executable, "-m", "worker", "--help"], capture_output=True, text=True, check=True)
    for name in (
        "serve",
        "migrate",
        "token",
        "sandbox",
        "rotate-keys",
        "status",
        "sync",
        "demo",
        "resource",
        "version",
    ):
        assert name in top.stdout
        sub = subprocess.run([sys.executable, "-m", "worker", name, "--help"], capture_output=True, text=True)
        assert sub.returncode == 0 and "usage: calsync" in sub.stdout
