"""Request-level retries through providers/http.py, provoked by sandbox faults over real sockets."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from structlog.testing import capture_logs

from providers import errors
from providers.http import RetryPolicy
from providers.sandbox import Sandbox

from .conftest import MakeAccount

# list_calendars is one request: the simplest thing to fault.
CALENDARS = {"google": r"/users/me/calendarList$", "microsoft": r"/me/calendars$"}


async def calendar_requests(sandbox: Sandbox, provider: str) -> list[dict]:
    return [r for r in await sandbox.control.requests(provider) if r["path"].endswith(("calendarList", "calendars"))]


async def test_429_retry_after_is_honoured(sandbox: Sandbox, account: MakeAccount, provider: str) -> None:
    acct = await account(provider)
    await sandbox.control.add_fault(provider=provider, path=CALENDARS[provider], status=429, retry_after=0.3, count=2)

    started = time.monotonic()
    with capture_logs() as logs:
        calendars = await acct.client.list_calendars()

    assert calendars and time.monotonic() - started >= 0.6
    assert [r["status"] for r in await calendar_requests(sandbox, provider)] == [429, 429, 200]
    retries = [entry for entry in logs if entry["event"] == "provider.retry"]
    assert [r["sleep_seconds"] for r in retries] == [0.3, 0.3]
    assert all(r["error"] == "RateLimitedError" and r["status"] == 429 for r in retries)
    assert acct.tokens._access_token not in repr(logs)


async def test_google_rate_limit_403_is_retried(sandbox: Sandbox, account: MakeAccount) -> None:
    acct = await account("google")
    body = {
        "error": {
            "errors": [
                {
                    "domain": "usageLimits",
                    "reason": "userRateLimitExceeded",
                    "message": "User Rate Limit Exceeded",
                }
            ],
            "code": 403,
            "message": "User Rate Limit Exceeded",
        }
    }
    await sandbox.control.add_fault(provider="google", path=CALENDARS["google"], status=403, body=body, count=1)

    assert await acct.client.list_calendars()
    assert [r["status"] for r in await calendar_requests(sandbox, "google")] == [403, 200]


async def test_other_403_is_permanent(sandbox: Sandbox, account: MakeAccount) -> None:
    acct = await account("google")
    body = {
        "error": {
            "errors": [{"domain": "calendar", "reason": "forbiddenForNonOrganizer", "message": "no"}],
            "code": 403,
            "message": "no",
        }
    }
    await sandbox.control.add_fault(provider="google", path=CALENDARS["google"], status=403, body=body, count=1)

    with pytest.raises(errors.ForbiddenError):
        await acct.client.list_calendars()
    assert len(await calendar_requests(sandbox, "google")) == 1


async def test_burst_of_503_is_survived(sandbox: Sandbox, account: MakeAccount, provider: str) -> None:
    acct = await account(provider)
    await sandbox.control.add_fault(provider=provider, path=CALENDARS[provider], status=503, count=4)

    assert await acct.client.list_calendars()
    assert [r["status"] for r in await calendar_requests(sandbox, provider)] == [503] * 4 + [200]


async def test_connection_resets_are_retried(sandbox: Sandbox, account: MakeAccount, provider: str) -> None:
    acct = await account(provider)
    await sandbox.control.add_fault(provider=provider, path=CALENDARS[provider], reset=True, count=2)

    with capture_logs() as logs:
        assert await acct.client.list_calendars()
    assert len(await calendar_requests(sandbox, provider)) == 3
    # aiohttp itself retries an idempotent request once when a pooled connection drops,
    # so our layer sees one or two of the resets.
    retried = [e["error"] for e in logs if e["event"] == "provider.retry"]
    assert retried in (["UnavailableError"], ["UnavailableError"] * 2)


async def test_slow_answer_times_out_and_is_retried(sandbox: Sandbox, account: MakeAccount, provider: str) -> None:
    acct = await account(provider, timeout_seconds=0.3)
    await sandbox.control.add_fault(provider=provider, path=CALENDARS[provider], latency_ms=1000, status=200, count=1)

    with capture_logs() as logs:
        assert await acct.client.list_calendars()
    assert [e["error"] for e in logs if e["event"] == "provider.retry"] == ["UnavailableError"]


async def test_attempt_cap_gives_up(sandbox: Sandbox, account: MakeAccount, provider: str) -> None:
    acct = await account(provider, policy=RetryPolicy(attempts=3, base=0.01, cap=0.02, deadline=10))
    await sandbox.control.add_fault(provider=provider, path=CALENDARS[provider], status=503, count=100)

    with pytest.raises(errors.UnavailableError):
        await acct.client.list_calendars()
    assert len(await calendar_requests(sandbox, provider)) == 3


async def test_deadline_refuses_a_wait_past_it(sandbox: Sandbox, account: MakeAccount, provider: str) -> None:
    acct = await account(provider, policy=RetryPolicy(attempts=5, base=0.01, cap=0.02, deadline=5))
    await sandbox.control.add_fault(provider=provider, path=CALENDARS[provider], status=429, retry_after=60, count=1)

    with pytest.raises(errors.RateLimitedError) as caught:
        await acct.client.list_calendars()
    assert caught.value.retry_after == 60  # the job's backoff can use the provider's hint
    assert len(await calendar_requests(sandbox, provider)) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, errors.BadRequestError),
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
        (412, errors.PreconditionFailedError),
    ],
)
async def test_client_errors_are_not_retried(
    sandbox: Sandbox, account: MakeAccount, provider: str, status: int, error: type[Exception]
) -> None:
    acct = await account(provider)
    await sandbox.control.add_fault(provider=provider, path=CALENDARS[provider], status=status, count=1)

    with pytest.raises(error):
        await acct.client.list_calendars()
    assert len(await calendar_requests(sandbox, provider)) == 1


class RecordingBudget:
    """A RequestBudget that records what http.py asks of it."""

    def __init__(self) -> None:
        self.slots: list[tuple[str, bool]] = []
        self.penalties: list[tuple[str, float]] = []

    def slot(self, key: str, *, interactive: bool) -> AbstractAsyncContextManager[None]:
        self.slots.append((key, interactive))
        return self._slot()

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        yield

    async def penalise(self, key: str, seconds: float) -> None:
        self.penalties.append((key, seconds))


async def test_every_attempt_holds_a_budget_slot_and_429_feeds_back(
    sandbox: Sandbox, account: MakeAccount, provider: str
) -> None:
    budget = RecordingBudget()
    acct = await account(provider, budget=budget)
    await sandbox.control.add_fault(provider=provider, path=CALENDARS[provider], status=429, retry_after=0.05, count=1)

    await acct.client.list_calendars()

    key = f"{provider}:{acct.email}"
    assert budget.slots == [(key, False), (key, False)]
    assert budget.penalties == [(key, 0.05)]
