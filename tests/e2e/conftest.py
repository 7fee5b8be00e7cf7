"""Fixtures for daemon-as-subprocess runs: a private sandbox, the backends, a work directory."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_JWT_SECRET
from tests.e2e.harness import Backends
from worker.crypto import TokenCipher, new_key


@pytest.fixture(scope="module")
async def own_sandbox() -> AsyncIterator[Any]:
    """A sandbox for this module alone: its faults and request log concern no other test."""
    from providers.sandbox import start_sandbox

    sb = await start_sandbox()
    yield sb
    await sb.stop()


@pytest.fixture(scope="module")
def backends(database_url: str, redis_url: str, redis_prefix: str) -> Backends:
    """The module's database and Redis keyspace, with a JWT secret and an encryption key."""
    return Backends(database_url, redis_url, redis_prefix, TEST_JWT_SECRET, (new_key(),))


@pytest.fixture(scope="module")
def cipher(backends: Backends) -> TokenCipher:
    return TokenCipher(backends.crypto_keys)


@pytest.fixture(scope="module")
def workdir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the daemons run and write their logs (kept under $CALSYNC_TEST_KEEP_LOGS when set)."""
    keep = os.environ.get("CALSYNC_TEST_KEEP_LOGS")
    if keep:
        return Path(tempfile.mkdtemp(prefix=f"{request.module.__name__.rsplit('.', 1)[-1]}-", dir=keep))
    return tmp_path_factory.mktemp("daemons")
