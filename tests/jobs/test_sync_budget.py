"""The Redis request budget: rate per Google user, in-flight cap per mailbox across processes,
interactive work first, and 429 penalties."""

from __future__ import annotations

import asyncio
import secrets
import time

from redis.asyncio import Redis

from worker.budget import RedisBudget


def _budgets(redis: Redis, prefix: str, n: int = 2, *, rps: float = 10, flight: int = 3) -> list[RedisBudget]:
    """`n` budgets over one Redis, as `n` daemon processes would have."""
    return [RedisBudget(redis, prefix, google_rps=rps, outlook_in_flight=flight) for _ in range(n)]


async def test_google_rate_holds_in_every_sliding_second(redis: Redis, redis_prefix: str) -> None:
    a, b = _budgets(redis, redis_prefix, rps=20)
    key = f"google:{secrets.token_hex(3)}@x"
    granted: list[float] = []

    async def one(budget: RedisBudget) -> None:
        async with budget.slot(key, interactive=False):
            granted.append(time.monotonic())

    await asyncio.gather(*(one(a if i % 2 else b) for i in range(30)))

    granted.sort()
    assert all(granted[i + 20] - granted[i] >= 0.95 for i in range(len(granted) - 20))
    assert granted[19] - granted[0] < 0.5  # a burst up to the limit is not delayed


async def test_outlook_in_flight_cap_across_processes(redis: Redis, redis_prefix: str) -> None:
    budgets = _budgets(redis, redis_prefix, 3, flight=3)
    key = f"outlook:{secrets.token_hex(3)}@x"
    current = peak = 0

    async def one(i: int) -> None:
        nonlocal current, peak
        async with budgets[i % 3].slot(key, interactive=False):
            current += 1
            peak = max(peak, current)
            await asyncio.sleep(0.03)
            current -= 1

    await asyncio.gather(*(one(i) for i in range(12)))

    assert peak == 3


async def test_interactive_requests_go_before_background(redis: Redis, redis_prefix: str) -> None:
    (budget,) = _budgets(redis, redis_prefix, 1, flight=1)
    key = f"outlook:{secrets.token_hex(3)}@x"
    order: list[str] = []
    release = asyncio.Event()

    async def hold() -> None:
        async with budget.slot(key, interactive=False):
            await release.wait()

    async def one(name: str, interactive: bool) -> None:
        async with budget.slot(key, interactive=interactive):
            order.append(name)
            await asyncio.sleep(0.01)

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.05)
    waiting = [asyncio.create_task(one(f"bg{i}", False)) for i in range(3)]
    await asyncio.sleep(0.05)
    waiting.append(asyncio.create_task(one("person", True)))
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(holder, *waiting)

    assert order[0] == "person" and sorted(order[1:]) == ["bg0", "bg1", "bg2"]


async def test_a_penalty_pauses_every_process(redis: Redis, redis_prefix: str) -> None:
    a, b = _budgets(redis, redis_prefix)
    key = f"google:{secrets.token_hex(3)}@x"
    await a.penalise(key, 0.3)
    await b.penalise(key, 0.05)  # never shortens a longer pause

    started = time.monotonic()
    async with b.slot(key, interactive=True):
        waited = time.monotonic() - started

    assert 0.25 <= waited < 1.0


async def test_unknown_keys_and_a_dead_redis_do_not_block(redis_url: str, redis_prefix: str) -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        budget = RedisBudget(dead, redis_prefix, google_rps=1, outlook_in_flight=1)
        async with budget.slot("google:x@y", interactive=False):
            pass
        async with budget.slot("other:key", interactive=False):
            pass
        await budget.penalise("google:x@y", 1)
    finally:
        await dead.aclose()
