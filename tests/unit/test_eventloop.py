"""Every calsync process, and every async test, runs on one kind of loop (worker/eventloop.py)."""

from __future__ import annotations

import asyncio
import importlib.util
import sys

import pytest

from worker import eventloop

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


async def _loop_kind() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def test_commands_run_on_uvloop_where_installed() -> None:
    assert eventloop.run(_loop_kind()) == ("uvloop" if HAS_UVLOOP else "asyncio")


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop has no Windows build")
def test_uvloop_is_installed_with_calsync() -> None:
    assert HAS_UVLOOP, "pyproject.toml asks for uvloop on this platform"


async def test_async_tests_run_on_the_daemons_loop() -> None:
    assert await _loop_kind() == eventloop.NAME
