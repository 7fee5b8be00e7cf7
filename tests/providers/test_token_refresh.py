"""Access-token refresh through providers/tokens.py: single flight, rotation, invalid_grant."""

from __future__ import annotations

import asyncio

import pytest

from providers import errors
from providers.google.client import GoogleCalendarClient
from providers.outlook.client import GraphCalendarClient
from providers.sandbox import Sandbox
from providers.tokens import AccessTokens

from .conftest import Account, MakeAccount


async def token_requests(sandbox: Sandbox, provider: str) -> list[dict]:
    return [r for r in await sandbox.control.requests(provider) if r["path"].endswith("/token")]


async def api_statuses(sandbox: Sandbox, provider: str) -> list[int]:
    return [r["status"] for r in await sandbox.control.requests(provider) if not r["path"].endswith("/token")]


async def test_many_concurrent_401s_cause_one_refresh(sandbox: Sandbox, account: MakeAccount, provider: str) -> None:
    acct = await account(provider)
    await sandbox.control.expire_tokens(provider)

    results = await asyncio.gather(*(acct.client.list_calendars() for _ in range(20)))

    assert all(results)
    assert len(await token_requests(sandbox, provider)) == 1
    assert acct.tokens.refresh_count == 1 and len(acct.refreshes) == 1
    assert 401 in await api_statuses(sandbox, provider)
    rotated = acct.refreshes[0][2]
    # Microsoft rotates refresh tokens (the caller must persist them); Google does not.
    assert (rotated is not None) == (provider == "microsoft")


async def test_expired_token_is_refreshed_before_use(sandbox: Sandbox, account: MakeAccount, provider: str) -> None:
    acct = await account(provider)
    tokens = AccessTokens(acct.http, acct.oauth, refresh_token=acct.issued["refresh_token"])
    cls = GoogleCalendarClient if provider == "google" else GraphCalendarClient
    client = cls(acct.http, tokens)

    assert await client.list_calendars()
    assert len(await token_requests(sandbox, provider)) == 1
    assert 401 not in await api_statuses(sandbox, provider)


async def test_rotated_refresh_token_is_used_next_time(sandbox: Sandbox, account: MakeAccount) -> None:
    acct = await account("microsoft")
    await sandbox.control.settings(refresh_grace_seconds=0)  # the old token dies at rotation
    try:
        for _ in range(3):
            await sandbox.control.expire_tokens("microsoft")
            assert await acct.client.list_calendars()
    finally:
        await sandbox.control.settings(refresh_grace_seconds=86400)
    assert [r[2] is not None for r in acct.refreshes] == [True, True, True]
    assert len({r[2] for r in acct.refreshes}) == 3


async def revoked(sandbox: Sandbox, acct: Account) -> None:
    await sandbox.control.revoke_grant(acct.provider, acct.email)
    await sandbox.control.expire_tokens(acct.provider)


async def test_invalid_grant_raises_reauth_required_once(sandbox: Sandbox, account: MakeAccount, provider: str) -> None:
    acct = await account(provider)
    await revoked(sandbox, acct)

    for _ in range(3):
        with pytest.raises(errors.ReauthRequiredError):
            await acct.client.list_calendars()
    # A dead grant is remembered: one refusal from the token endpoint, not one per call.
    assert [r["status"] for r in await token_requests(sandbox, provider)] == [400]


async def test_concurrent_callers_of_a_dead_grant_share_one_refusal(
    sandbox: Sandbox, account: MakeAccount, provider: str
) -> None:
    acct = await account(provider)
    await revoked(sandbox, acct)

    results = await asyncio.gather(*(acct.client.list_calendars() for _ in range(10)), return_exceptions=True)

    assert all(isinstance(r, errors.ReauthRequiredError) for r in results)
    assert len(await token_requests(sandbox, provider)) == 1


async def test_a_second_401_after_refresh_is_not_retried_forever(
    sandbox: Sandbox, account: MakeAccount, provider: str
) -> None:
    acct = await account(provider)
    path = r"/users/me/calendarList$" if provider == "google" else r"/me/calendars$"
    await sandbox.control.add_fault(provider=provider, path=path, status=401, count=2)

    with pytest.raises(errors.UnauthorizedError):
        await acct.client.list_calendars()
    assert await api_statuses(sandbox, provider) == [401, 401]
    assert len(await token_requests(sandbox, provider)) == 1
