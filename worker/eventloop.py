"""The event loop every calsync process runs on: uvloop where it is installed, else asyncio's.

uvloop (libuv, in C) does the loop's own work, waking tasks and watching sockets, for less
than asyncio's pure-Python loop; a sync is a dozen round trips (provider, PostgreSQL, Redis),
and a no-change sync cost 5-10% less of our CPU on uvloop. Windows has no uvloop: there,
asyncio's own loop runs everything.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

NAME = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new loop of the kind calsync runs on."""
    if NAME == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def policy() -> asyncio.AbstractEventLoopPolicy:
    """A loop policy whose loops are of that kind (for the tests' pytest-asyncio runners)."""
    if NAME == "uvloop":
        import uvloop

        return uvloop.EventLoopPolicy()
    return asyncio.DefaultEventLoopPolicy()


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on calsync's loop: every command and benchmark starts here."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
