"""The daemon as a subprocess for reliability runs: start, SIGKILL, restart, wait for /readyz.

The sandbox lives in the *calling* process, so its truth (events, grants, request log)
survives every daemon death. Each daemon appends stdout and stderr to one log file, kept
for the secret scan. Used by tests/e2e and by the long runs in bench/.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[2]
KILLED = -signal.SIGKILL  # asyncio's returncode for a process killed by SIGKILL
CRASHED = 137  # worker.crashpoints.EXIT_CODE


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Backends:
    """Where the daemons keep state, and the secrets they share."""

    database_url: str
    redis_url: str
    redis_prefix: str
    jwt_secret: str
    crypto_keys: tuple[str, ...]


# Short cadences: a killed worker's lease expires in seconds and polls come every second.
FAST = {
    "CALSYNC_SYNC__POLL_SECONDS": "1",
    "CALSYNC_SYNC__RECONCILE_SECONDS": "2",
    "CALSYNC_SYNC__SWEEP_SECONDS": "0.1",
    "CALSYNC_SYNC__LEASE_SECONDS": "5",
    "CALSYNC_SYNC__BACKOFF_BASE_SECONDS": "0.2",
    "CALSYNC_SYNC__BACKOFF_CAP_SECONDS": "2.0",
    "CALSYNC_NOTIFY__SWEEP_SECONDS": "0.5",
    "CALSYNC_WRITE__SWEEP_SECONDS": "0.2",
    "CALSYNC_WRITE__LEASE_SECONDS": "5",
    "CALSYNC_WRITE__BACKOFF_BASE_SECONDS": "0.2",
    "CALSYNC_WRITE__BACKOFF_CAP_SECONDS": "2.0",
    "CALSYNC_PUSH__SWEEP_SECONDS": "0.5",
    "CALSYNC_PUSH__LEASE_SECONDS": "5",
    "CALSYNC_PUSH__BACKOFF_BASE_SECONDS": "0.5",
    "CALSYNC_PUSH__BACKOFF_CAP_SECONDS": "2.0",
    "CALSYNC_HTTP__TIMEOUT_SECONDS": "2.0",
    "CALSYNC_HTTP__RETRY_BASE_SECONDS": "0.05",
    "CALSYNC_HTTP__RETRY_CAP_SECONDS": "0.5",
    "CALSYNC_HTTP__RETRY_DEADLINE_SECONDS": "8.0",
    "CALSYNC_SERVER__SHUTDOWN_GRACE_SECONDS": "1.0",
}


def daemon_env(backends: Backends, sandbox: Any, *, port: int, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of one daemon: our servers, the sandbox's URLs, fast cadences."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSYNC_")}
    env |= {
        "CALSYNC_SERVER__HOST": "127.0.0.1",
        "CALSYNC_SERVER__PORT": str(port),
        "CALSYNC_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CALSYNC_DATABASE__URL": backends.database_url,
        "CALSYNC_DATABASE__AUTO_MIGRATE": "true",
        "CALSYNC_DATABASE__POOL_SIZE": "5",
        "CALSYNC_REDIS__URL": backends.redis_url,
        "CALSYNC_REDIS__PREFIX": backends.redis_prefix,
        "CALSYNC_EMBEDDED__DATA_DIR": str(workdir / "data"),
        "CALSYNC_AUTH__JWT_SECRET": backends.jwt_secret,
        "CALSYNC_CRYPTO__KEYS": ",".join(backends.crypto_keys),
        "CALSYNC_SANDBOX__MODE": "off",
        "CALSYNC_LOGGING__FORMAT": "json",
        "CALSYNC_GOOGLE__CLIENT_ID": "sandbox-google-client",
        "CALSYNC_GOOGLE__CLIENT_SECRET": "sandbox-google-secret",
        "CALSYNC_GOOGLE__AUTH_URL": sandbox.google_auth_url,
        "CALSYNC_GOOGLE__TOKEN_URL": sandbox.google_token_url,
        "CALSYNC_GOOGLE__REVOKE_URL": sandbox.google_revoke_url,
        "CALSYNC_GOOGLE__USERINFO_URL": sandbox.google_userinfo_url,
        "CALSYNC_GOOGLE__API_BASE": sandbox.google_api,
        "CALSYNC_OUTLOOK__CLIENT_ID": "sandbox-ms-client",
        "CALSYNC_OUTLOOK__CLIENT_SECRET": "sandbox-ms-secret",
        "CALSYNC_OUTLOOK__AUTHORITY": sandbox.ms_authority,
        "CALSYNC_OUTLOOK__API_BASE": sandbox.graph_api,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(REPO),  # the daemon runs the code under test, even from another checkout
    }
    return env | FAST | extra


async def register_callbacks(sandbox: Any, urls: list[str]) -> None:
    """Let the sandbox's OAuth clients redirect to every daemon's callback."""
    callbacks = [u + "/oauth/callback" for u in urls]
    await sandbox.control.register_client("google", "sandbox-google-client", "sandbox-google-secret", callbacks)
    await sandbox.control.register_client("microsoft", "sandbox-ms-client", "sandbox-ms-secret", callbacks)


@dataclass
class Daemon:
    """One `python -m worker serve` process that can be killed and restarted on the same port."""

    name: str
    env: dict[str, str]
    workdir: Path
    port: int
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    kills: int = 0
    crashes: int = 0  # deaths at a crash point (exit 137)
    _log: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self, *, crash_at: str | None = None) -> None:
        """Spawn the process (not waiting for readiness); `crash_at` arms a crash point."""
        assert not self.running, f"{self.name} is already running"
        env = dict(self.env)
        if crash_at:
            env["CALSYNC_CRASH_AT"] = crash_at
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._log is None:
            self._log = self.log_path.open("ab")
        self._log.write(f"--- start {self.starts + 1} crash_at={crash_at}\n".encode())
        self._log.flush()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "worker",
            "--config",
            str(REPO / "worker.toml"),
            "serve",
            env=env,
            cwd=self.workdir,
            stdout=self._log,
            stderr=self._log,
        )
        self.starts += 1

    async def wait_ready(self, within: float = 60.0) -> None:
        """Poll /readyz until 200; fail if the process dies first or the deadline passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while loop.time() < deadline:
                if not self.running:
                    raise AssertionError(f"{self.name} exited with {self.returncode()} before ready:\n{self.tail()}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(self.url + "/readyz") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} never became ready:\n{self.tail()}")

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a machine or OOM kill."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
            self.kills += 1

    async def wait_exit(self, within: float) -> int | None:
        """Wait for the process to end by itself (a crash point); None if still running."""
        if self.proc is None:
            return None
        try:
            code = await asyncio.wait_for(self.proc.wait(), within)
        except TimeoutError:
            return None
        if code == CRASHED:
            self.crashes += 1
        return code

    async def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM and wait (SIGKILL after `grace`); returns the exit code."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.returncode()

    async def restart(self, *, crash_at: str | None = None, within: float = 60.0) -> None:
        """Start again (after a death) and wait until ready."""
        await self.start(crash_at=crash_at)
        await self.wait_ready(within)

    def close(self) -> None:
        """Close the log file (after the process is gone)."""
        if self._log is not None:
            self._log.close()
            self._log = None

    def statuses(self) -> dict[int, int]:
        """How often this daemon answered each HTTP status (its one access-log line per request)."""
        if self._log is not None:
            self._log.flush()
        counts: dict[int, int] = {}
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"http.request"' in line:
                status = int(json.loads(line)["status"])
                counts[status] = counts.get(status, 0) + 1
        return counts

    def tail(self, chars: int = 3000) -> str:
        """The end of the log, for failure messages."""
        if self._log is not None:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


@contextlib.asynccontextmanager
async def daemons(backends: Backends, sandbox: Any, workdir: Path, count: int = 1, **extra: str) -> Any:
    """`count` daemons on their own ports sharing one database, Redis and sandbox; stopped after."""
    ports = [free_port() for _ in range(count)]
    procs = [
        Daemon(f"daemon{i}", daemon_env(backends, sandbox, port=p, workdir=workdir, **extra), workdir, p)
        for i, p in enumerate(ports)
    ]
    await register_callbacks(sandbox, [d.url for d in procs])
    try:
        yield procs
    finally:
        for d in procs:
            await d.stop()
            d.close()


async def get_json(url: str, *, limit: float = 3.0) -> tuple[int, Any]:
    """GET a URL; (status, JSON body or None)."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit)) as session,
        session.get(url) as resp,
    ):
        try:
            body = await resp.json(content_type=None)
        except ValueError:
            body = None
        return resp.status, body
