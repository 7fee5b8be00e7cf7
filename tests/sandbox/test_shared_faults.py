"""Every fault knob, exercised through real HTTP against the Google half."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

if TYPE_CHECKING:
    from tests.sandbox.conftest import GoogleUser

EVENTS = "/calendars/primary/events"
EVENT = {"start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"}}


async def test_count_fails_next_n_with_google_body(guser: GoogleUser) -> None:
    await guser.sb.control.add_fault(provider="google", status=403, count=2)
    for _ in range(2):
        status, body, _ = await guser.call("GET", EVENTS)
        assert status == 403
        assert body["error"]["errors"][0] == {
            "domain": "usageLimits",
            "reason": "rateLimitExceeded",
            "message": "Rate Limit Exceeded",
        }
    assert (await guser.call("GET", EVENTS))[0] == 200
    assert (await guser.sb.control.faults())[0]["fired"] == 2


@pytest.mark.parametrize(
    ("status", "reason"),
    [(429, "rateLimitExceeded"), (500, "backendError"), (503, "backendError"), (410, "deleted")],
)
async def test_default_bodies_per_status(guser: GoogleUser, status: int, reason: str) -> None:
    await guser.sb.control.add_fault(status=status, count=1)
    got, body, _ = await guser.call("GET", EVENTS)
    assert (got, body["error"]["code"], body["error"]["errors"][0]["reason"]) == (status, status, reason)


async def test_custom_body_and_retry_after(guser: GoogleUser) -> None:
    body = {"error": {"code": 429, "message": "slow down"}}
    await guser.sb.control.add_fault(status=429, body=body, retry_after=7, count=1)
    status, got, headers = await guser.call("GET", EVENTS)
    assert (status, got, headers["Retry-After"]) == (429, body, "7")


async def test_fraction_is_seeded_and_roughly_right(guser: GoogleUser) -> None:
    async def run() -> list[int]:
        await guser.sb.control.clear_faults()
        await guser.sb.control.add_fault(status=503, fraction=0.5, seed=42)
        return [(await guser.call("GET", EVENTS))[0] for _ in range(40)]

    first, second = await run(), await run()
    assert first == second  # same seed, same pattern
    assert 8 <= first.count(503) <= 32 and set(first) == {200, 503}


async def test_method_and_path_filters(guser: GoogleUser) -> None:
    await guser.sb.control.add_fault(method="POST", path=r"/events$", status=500)
    assert (await guser.call("GET", EVENTS))[0] == 200
    assert (await guser.call("POST", EVENTS, json=EVENT))[0] == 500
    assert (await guser.call("GET", "/users/me/calendarList"))[0] == 200


async def test_provider_filter_and_control_routes_are_immune(guser: GoogleUser) -> None:
    await guser.sb.control.add_fault(provider="microsoft", status=500)
    assert (await guser.call("GET", EVENTS))[0] == 200
    await guser.sb.control.add_fault(status=500)  # every provider route, never /_sandbox/
    assert (await guser.call("GET", EVENTS))[0] == 500
    assert await guser.sb.control.faults()


async def test_oauth_paths_get_oauth_shaped_bodies(guser: GoogleUser) -> None:
    await guser.sb.control.add_fault(path="^/token$", status=503, count=1)
    async with guser.session.post(guser.sb.google_token_url, data={}) as resp:
        assert resp.status == 503
        assert set(await resp.json()) == {"error", "error_description"}


async def test_latency(guser: GoogleUser) -> None:
    await guser.sb.control.add_fault(latency_ms=300, count=1)
    started = time.monotonic()
    status, _, _ = await guser.call("GET", EVENTS)
    assert status == 200 and time.monotonic() - started >= 0.3


async def test_reset_drops_the_connection(guser: GoogleUser) -> None:
    # a POST: aiohttp silently retries idempotent requests once after a disconnect
    await guser.sb.control.add_fault(reset=True, count=1)
    with pytest.raises(aiohttp.ClientError):
        await guser.call("POST", EVENTS, json=EVENT)
    assert await guser.sb.control.list_events("google", guser.email) == []
    assert (await guser.call("GET", EVENTS))[0] == 200
    logged = await guser.sb.control.requests("google")
    assert [e["status"] for e in logged] == ["reset", 200]


@pytest.mark.parametrize("fault", [{"status": 503}, {"reset": True}])
async def test_after_commit_runs_the_write_then_loses_the_reply(guser: GoogleUser, fault: dict[str, Any]) -> None:
    await guser.sb.control.add_fault(method="POST", after_commit=True, count=1, **fault)
    async with aiohttp.ClientSession() as fresh:
        headers = {"Authorization": f"Bearer {guser.token}"}
        try:
            async with fresh.post(f"{guser.sb.google_api}{EVENTS}", json=EVENT, headers=headers) as resp:
                assert resp.status == 503
        except aiohttp.ClientError:
            assert fault.get("reset")
    assert len(await guser.sb.control.list_events("google", guser.email)) == 1


async def test_bad_fault_specs_are_400(guser: GoogleUser) -> None:
    for spec in ({"status": 500, "colour": "red"}, {"count": 1}):
        async with guser.session.post(f"{guser.sb.url}/_sandbox/faults", json=spec) as resp:
            assert resp.status == 400


async def test_clear_and_reset_remove_faults(guser: GoogleUser) -> None:
    await guser.sb.control.add_fault(status=500)
    await guser.sb.control.clear_faults()
    assert (await guser.call("GET", EVENTS))[0] == 200
    await guser.sb.control.add_fault(status=500)
    await guser.sb.control.reset()
    assert await guser.sb.control.faults() == []
