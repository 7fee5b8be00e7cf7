"""Links a provider hands back are followed only to the configured host."""

from __future__ import annotations

import pytest

from providers import errors
from providers.sandbox import Sandbox

from .conftest import WINDOW, MakeAccount


async def test_foreign_delta_cursor_is_refused_without_a_request(sandbox: Sandbox, account: MakeAccount) -> None:
    acct = await account("microsoft")
    foreign = "https://graph.evil.test/v1.0/me/calendarView/delta?$deltatoken=abc"

    with pytest.raises(errors.ForeignLinkError):
        async for _ in acct.client.list_changes(acct.calendar_id, foreign, WINDOW):
            pass
    assert await sandbox.control.requests("microsoft") == []


async def test_same_host_other_port_is_foreign(sandbox: Sandbox, account: MakeAccount) -> None:
    acct = await account("microsoft")
    host, port = sandbox.graph_api.split("//")[1].split("/")[0].split(":")
    other = f"http://{host}:{int(port) + 1}/v1.0/me/calendarView/delta?$deltatoken=abc"

    with pytest.raises(errors.ForeignLinkError):
        async for _ in acct.client.list_changes(acct.calendar_id, other, WINDOW):
            pass


async def test_foreign_next_link_in_a_page_is_refused(sandbox: Sandbox, account: MakeAccount) -> None:
    acct = await account("microsoft")
    page = {"value": [], "@odata.nextLink": "https://attacker.test/v1.0/me/calendarView/delta?$skiptoken=x"}
    await sandbox.control.add_fault(provider="microsoft", path=r"/calendarView/delta$", status=200, body=page, count=1)

    with pytest.raises(errors.ForeignLinkError):
        async for _ in acct.client.list_changes(acct.calendar_id, None, WINDOW):
            pass
    assert len(await sandbox.control.requests("microsoft")) == 1


async def test_foreign_next_link_of_calendars_is_refused(sandbox: Sandbox, account: MakeAccount) -> None:
    acct = await account("microsoft")
    page = {"value": [{"id": "c1", "name": "x"}], "@odata.nextLink": "https://attacker.test/v1.0/me/calendars?$skip=1"}
    await sandbox.control.add_fault(provider="microsoft", path=r"/me/calendars$", status=200, body=page, count=1)

    with pytest.raises(errors.ForeignLinkError):
        await acct.client.list_calendars()


async def test_own_delta_link_round_trips(sandbox: Sandbox, account: MakeAccount) -> None:
    acct = await account("microsoft")
    cursor = [p async for p in acct.client.list_changes(acct.calendar_id, None, WINDOW)][-1].next_cursor
    assert cursor and cursor.startswith(sandbox.graph_api)

    again = [p async for p in acct.client.list_changes(acct.calendar_id, cursor, WINDOW)]

    assert again[-1].next_cursor and not again[-1].full_sync
