"""The /_sandbox/ control surface: users, calendars, events, read-back, settings, errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import pytest

from providers.sandbox import Sandbox, SandboxControlError

if TYPE_CHECKING:
    from tests.sandbox.conftest import GoogleUser

EVENT = {"start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"}, "summary": "x"}


async def test_user_and_calendars_shape(sandbox: Sandbox) -> None:
    user = await sandbox.control.create_user("google", "c@example.test")
    assert user["email"] == "c@example.test" and user["id"]
    assert user["calendars"] == [{"id": "c@example.test", "name": "c@example.test", "primary": True}]
    extra = await sandbox.control.add_calendar("google", "c@example.test", "Side")
    assert extra["name"] == "Side" and extra["primary"] is False


async def test_user_side_event_edits(guser: GoogleUser) -> None:
    control = guser.sb.control
    created = await control.create_event("google", guser.email, EVENT)
    patched = await control.patch_event("google", guser.email, created["id"], {"summary": "y"})
    assert patched["summary"] == "y"
    await control.delete_event("google", guser.email, created["id"])
    assert [e["status"] for e in await control.list_events("google", guser.email)] == ["cancelled"]


async def test_bulk_load_counts(guser: GoogleUser) -> None:
    assert await guser.sb.control.bulk_load("google", guser.email, [EVENT] * 10_000) == 10_000
    page = await guser.ok("GET", "/calendars/primary/events", params={"maxResults": "2500"})
    assert len(page["items"]) == 2500


@pytest.mark.parametrize(
    ("call", "status"),
    [
        (lambda c: c.create_user("nope", "x@y"), 400),
        (lambda c: c.create_event("google", "ghost@example.test", EVENT), 404),
        (lambda c: c.patch_event("google", "ghost@example.test", "abcdef", {}), 404),
        (lambda c: c.settings(no_such_setting=1), 400),
        (lambda c: c.settings(access_token_ttl="soon"), 400),
    ],
)
async def test_control_errors(sandbox: Sandbox, call, status: int) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SandboxControlError) as caught:
        await call(sandbox.control)
    assert caught.value.status == status


async def test_bad_event_body_is_400(guser: GoogleUser) -> None:
    with pytest.raises(SandboxControlError) as caught:
        await guser.sb.control.create_event("google", guser.email, {"summary": "no times"})
    assert caught.value.status == 400


async def test_requests_log_and_since(guser: GoogleUser) -> None:
    await guser.call("GET", "/calendars/primary/events", params={"maxResults": "5"})
    first = await guser.sb.control.requests("google")
    assert [(e["method"], e["path"], e["query"], e["status"]) for e in first] == [
        ("GET", "/calendar/v3/calendars/primary/events", {"maxResults": "5"}, 200)
    ]
    await guser.call("GET", "/calendars/nope/events")
    later = await guser.sb.control.requests(since=first[-1]["seq"])
    assert [e["status"] for e in later] == [404]


async def test_reset_clears_state_but_keeps_clients(sandbox: Sandbox) -> None:
    await sandbox.control.register_client("google", "kept", "s", ["http://127.0.0.1:1/cb"])
    await sandbox.control.create_user("google", "gone@example.test")
    await sandbox.control.reset()
    with pytest.raises(SandboxControlError):
        await sandbox.control.issue_tokens("google", "gone@example.test")
    params = {"client_id": "kept", "redirect_uri": "http://127.0.0.1:1/cb", "response_type": "code", "scope": "x"}
    async with aiohttp.ClientSession() as http, http.get(sandbox.google_auth_url, params=params) as resp:
        assert resp.status == 200


async def test_settings_round_trip(sandbox: Sandbox) -> None:
    changed = await sandbox.control.settings(channel_max_ttl=60, delivery_retry_base=0.5)
    assert (changed["channel_max_ttl"], changed["delivery_retry_base"]) == (60, 0.5)
    assert sandbox.settings.channel_max_ttl == 60


def test_urls(sandbox: Sandbox) -> None:
    urls = sandbox.urls()
    assert urls["google_api"] == sandbox.url + "/calendar/v3"
    assert urls["google_token_url"] == sandbox.url + "/token"
    assert urls["graph_api"] == sandbox.url + "/v1.0"
