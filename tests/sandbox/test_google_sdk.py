"""Fidelity: Google's official google-api-python-client works against the sandbox.

The client is synchronous, so it runs in a thread while the sandbox serves on the test's
event loop. It uses the discovery document bundled in its wheel, so paths, verbs and
parameter encodings are Google's, not ours.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import google.oauth2.credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

if TYPE_CHECKING:
    from tests.sandbox.conftest import GoogleUser, Receiver


def service(api: str, token: str) -> Any:
    """A Calendar v3 service object pointed at the sandbox."""
    credentials = google.oauth2.credentials.Credentials(token)
    return build(
        "calendar",
        "v3",
        credentials=credentials,
        static_discovery=True,
        client_options={"api_endpoint": api + "/"},
        cache_discovery=False,
    )


def full_sync(svc: Any, **params: Any) -> tuple[list[dict[str, Any]], str, int]:
    """Page through events.list; return items, the sync token and the page count."""
    items: list[dict[str, Any]] = []
    token, pages = None, 0
    while True:
        page = svc.events().list(calendarId="primary", pageToken=token, **params).execute()
        pages += 1
        items += page["items"]
        token = page.get("nextPageToken")
        if token is None:
            return items, page["nextSyncToken"], pages


def events(n: int) -> list[dict[str, Any]]:
    """N one-hour events on consecutive days."""
    return [
        {
            "summary": f"e{i}",
            "start": {"dateTime": f"2026-05-{1 + i % 28:02d}T{i % 20:02d}:00:00Z"},
            "end": {"dateTime": f"2026-05-{1 + i % 28:02d}T{i % 20 + 1:02d}:00:00Z"},
        }
        for i in range(n)
    ]


async def test_official_client_lists_calendars(guser: GoogleUser) -> None:
    await guser.sb.control.add_calendar("google", guser.email, "Team")
    svc = service(guser.sb.google_api, guser.token)
    listed = await asyncio.to_thread(lambda: svc.calendarList().list().execute())
    assert [c.get("primary", False) for c in listed["items"]] == [True, False]
    assert listed["items"][1]["summary"] == "Team"


async def test_official_client_pages_then_syncs_incrementally(guser: GoogleUser) -> None:
    await guser.sb.control.bulk_load("google", guser.email, events(25))
    svc = service(guser.sb.google_api, guser.token)
    items, sync_token, pages = await asyncio.to_thread(full_sync, svc, maxResults=10)
    assert (len(items), pages) == (25, 3)
    assert len({i["id"] for i in items}) == 25

    gone = items[0]["id"]
    await guser.sb.control.delete_event("google", guser.email, gone)
    await guser.sb.control.patch_event("google", guser.email, items[1]["id"], {"summary": "new"})

    def incremental() -> dict[str, Any]:
        return svc.events().list(calendarId="primary", syncToken=sync_token).execute()  # type: ignore[no-any-return]

    changes = await asyncio.to_thread(incremental)
    by_id = {i["id"]: i for i in changes["items"]}
    assert by_id[gone]["status"] == "cancelled"
    assert by_id[items[1]["id"]]["summary"] == "new"
    assert len(by_id) == 2 and "nextSyncToken" in changes


async def test_official_client_writes(guser: GoogleUser) -> None:
    svc = service(guser.sb.google_api, guser.token)
    body = {
        "id": "0123456789abcdefv",
        "summary": "Appointment",
        "start": {"dateTime": "2026-06-01T10:00:00+02:00"},
        "end": {"dateTime": "2026-06-01T11:00:00+02:00"},
        "extendedProperties": {"private": {"calsync": "a1"}},
    }

    def round_trip() -> tuple[dict[str, Any], dict[str, Any], int]:
        events_api = svc.events()
        created = events_api.insert(calendarId="primary", body=body, sendUpdates="none").execute()
        patched = events_api.patch(calendarId="primary", eventId=created["id"], body={"summary": "Moved"}).execute()
        events_api.delete(calendarId="primary", eventId=created["id"]).execute()
        try:
            events_api.delete(calendarId="primary", eventId=created["id"]).execute()
        except HttpError as exc:
            return created, patched, exc.resp.status
        return created, patched, 0

    created, patched, second_delete = await asyncio.to_thread(round_trip)
    assert created["id"] == body["id"]
    assert created["extendedProperties"] == {"private": {"calsync": "a1"}}
    assert patched["summary"] == "Moved" and patched["etag"] != created["etag"]
    assert second_delete == 410
    stored = await guser.sb.control.list_events("google", guser.email)
    assert [e["status"] for e in stored] == ["cancelled"]


async def test_official_client_watches_and_stops(guser: GoogleUser, receiver: Receiver) -> None:
    svc = service(guser.sb.google_api, guser.token)
    spec = {"id": "sdk-channel", "type": "web_hook", "address": receiver.url, "token": "secret"}

    def watch() -> dict[str, Any]:
        return svc.events().watch(calendarId="primary", body=spec).execute()  # type: ignore[no-any-return]

    channel = await asyncio.to_thread(watch)
    await guser.sb.control.drain()
    assert [h["X-Goog-Resource-State"] for h in receiver.received] == ["sync"]
    stop = {"id": channel["id"], "resourceId": channel["resourceId"]}
    await asyncio.to_thread(lambda: svc.channels().stop(body=stop).execute())
    await guser.sb.control.bulk_load("google", guser.email, events(1))
    await guser.sb.control.drain()
    assert len(receiver.received) == 1
