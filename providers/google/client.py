"""GoogleCalendarClient: Calendar v3 calendars, event changes, appointment writes, push channels.

Implements the sync guide (https://developers.google.com/workspace/calendar/api/guides/sync):
a full sync lists the window with singleEvents=true and keeps the `nextSyncToken` of the
last page; an incremental sync replays it; 410 raises CursorExpiredError. Status codes,
retries and tokens are handled below this module, in providers/http.py and tokens.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping
from datetime import UTC, datetime
from typing import Any

from providers import errors
from providers.base import (
    AppointmentBody,
    CalendarInfo,
    ChangePage,
    Channel,
    ProviderEvent,
    Window,
    WrittenEvent,
)
from providers.google.mapping import READER, appointment_body, event_id_for, parse_event
from providers.google.wire import CalendarListEntry, Event, EventsPage
from providers.http import Authenticator, ProviderHttp, quote_segment, read_ahead
from providers.parsing import ListingDecoder, parse_page, single_event

# Google's maximum page size: fewer round trips per full sync.
EVENTS_PAGE_SIZE = 2500
CALENDARS_PAGE_SIZE = 250
_EVENTS_PAGE: ListingDecoder[EventsPage[Any]] = ListingDecoder(EventsPage, Event, "items")
# Never e-mail attendees about calsync's writes.
_QUIET = {"sendUpdates": "none"}


class GoogleCalendarClient:
    """One connection's view of Google Calendar (satisfies providers.base.CalendarClient)."""

    def __init__(
        self,
        http: ProviderHttp,
        tokens: Authenticator,
        *,
        api_base: str | None = None,
        budget_key: str | None = None,
        interactive: bool = False,
        page_size: int = EVENTS_PAGE_SIZE,
    ):
        self._http = http
        self._page_size = page_size
        self._tokens = tokens
        self._base = (api_base or http.api_base).rstrip("/")
        self._budget_key = budget_key
        self._interactive = interactive

    async def list_calendars(self) -> list[CalendarInfo]:
        """Every calendar in the account's calendar list."""
        calendars: list[CalendarInfo] = []
        params = {"maxResults": str(CALENDARS_PAGE_SIZE)}
        while True:
            body = await self._call("GET", "/users/me/calendarList", params=params)
            calendars += [_calendar(e) for e in body.get("items") or () if not e.get("deleted")]
            if not body.get("nextPageToken"):
                return calendars
            params = {**params, "pageToken": body["nextPageToken"]}

    async def list_changes(self, calendar_id: str, cursor: str | None, window: Window) -> AsyncIterator[ChangePage]:
        """Full sync of `window` (cursor None) or the changes since the sync token `cursor`."""
        full = cursor is None
        params = _list_params(cursor, window, self._page_size)
        path = f"/calendars/{quote_segment(calendar_id)}/events"

        def follow(body: EventsPage[Any]) -> Awaitable[EventsPage[Any]] | None:
            token = body.nextPageToken
            return self._events_page(path, {**params, "pageToken": token}) if token else None

        async for body in read_ahead(self._events_page(path, params), follow):
            last = not body.nextPageToken
            page = await parse_page(body.items or (), body.nextSyncToken if last else None, full, READER)
            if last or page.events or page.quarantined:
                yield page

    async def get_event(self, calendar_id: str, event_id: str) -> ProviderEvent:
        """One event (NotFoundError when it never existed)."""
        return _event(await self._call("GET", self._event_path(calendar_id, event_id)))

    async def create_event(self, calendar_id: str, body: AppointmentBody) -> WrittenEvent:
        """Insert the appointment under an id derived from it, so a repeat cannot duplicate it.

        A 409 means an earlier attempt landed (its answer was lost) or the event was deleted:
        the existing event is patched to this body and confirmed, which covers both.
        """
        event_id = event_id_for(body.appointment_id)
        payload = {**appointment_body(body), "id": event_id}
        path = f"/calendars/{quote_segment(calendar_id)}/events"
        try:
            return _written(await self._call("POST", path, params=_QUIET, json_body=payload))
        except errors.ConflictError:
            return await self._patch(calendar_id, event_id, {**appointment_body(body), "status": "confirmed"}, None)

    async def patch_event(
        self, calendar_id: str, event_id: str, body: AppointmentBody, *, etag: str | None = None
    ) -> WrittenEvent:
        """Replace calsync's fields of an event (PreconditionFailedError when `etag` is stale)."""
        return await self._patch(calendar_id, event_id, appointment_body(body), etag)

    async def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete an event; 404 and 410 (already deleted) count as success."""
        try:
            await self._call("DELETE", self._event_path(calendar_id, event_id), params=_QUIET)
        except (errors.NotFoundError, errors.GoneError):
            return

    async def watch(
        self,
        calendar_id: str,
        *,
        channel_id: str,
        address: str,
        token: str,
        ttl_seconds: int | None = None,
    ) -> Channel:
        """Open a push channel on the calendar's events (persist `channel_id` before calling)."""
        payload: dict[str, Any] = {
            "id": channel_id,
            "type": "web_hook",
            "address": address,
            "token": token,
        }
        if ttl_seconds is not None:
            payload["params"] = {"ttl": str(ttl_seconds)}
        body = await self._call("POST", f"/calendars/{quote_segment(calendar_id)}/events/watch", json_body=payload)
        return Channel(
            id=body.get("id", channel_id),
            resource_id=body.get("resourceId", ""),
            expires_at=_expiration(body.get("expiration")),
            token=body.get("token"),
        )

    async def unwatch(self, channel_id: str, resource_id: str) -> None:
        """Stop a push channel; an unknown or expired channel counts as stopped."""
        try:
            await self._call("POST", "/channels/stop", json_body={"id": channel_id, "resourceId": resource_id})
        except errors.NotFoundError:
            return

    async def _patch(self, calendar_id: str, event_id: str, payload: dict[str, Any], etag: str | None) -> WrittenEvent:
        headers = {"If-Match": etag} if etag else None
        path = self._event_path(calendar_id, event_id)
        return _written(await self._call("PATCH", path, params=_QUIET, json_body=payload, headers=headers))

    async def _events_page(self, path: str, params: Mapping[str, str]) -> EventsPage[Any]:
        response = await self._http.request(
            "GET",
            self._base + path,
            auth=self._tokens,
            params=params,
            budget_key=self._budget_key,
            interactive=self._interactive,
            decode=_EVENTS_PAGE,
        )
        if not isinstance(response.body, EventsPage):
            raise errors.MalformedResponseError("events.list answered without a body")
        return response.body

    def _event_path(self, calendar_id: str, event_id: str) -> str:
        return f"/calendars/{quote_segment(calendar_id)}/events/{quote_segment(event_id)}"

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        response = await self._http.request(
            method,
            self._base + path,
            auth=self._tokens,
            params=params,
            json_body=json_body,
            headers=headers,
            budget_key=self._budget_key,
            interactive=self._interactive,
        )
        if response.body is None:
            return {}
        if not isinstance(response.body, dict):
            raise errors.MalformedResponseError(f"expected a JSON object from {method} {path}")
        return response.body


def _list_params(cursor: str | None, window: Window, page_size: int) -> dict[str, str]:
    """events.list query: a window for full syncs; only the token for incremental ones.

    Google rejects timeMin/timeMax beside a syncToken; showDeleted is left at its default
    (false for full syncs; incremental feeds always carry deletions).
    """
    params = {"singleEvents": "true", "maxResults": str(page_size)}
    if cursor is not None:
        return {**params, "syncToken": cursor}
    return {**params, "timeMin": _rfc3339(window.start), "timeMax": _rfc3339(window.end)}


def _event(raw: dict[str, Any]) -> ProviderEvent:
    return single_event(raw, parse_event)


def _written(raw: dict[str, Any]) -> WrittenEvent:
    if not isinstance(raw.get("id"), str):
        raise errors.MalformedResponseError("written event has no id")
    return WrittenEvent(raw["id"], raw.get("etag"))


def _calendar(entry: CalendarListEntry) -> CalendarInfo:
    role = entry.get("accessRole", "reader")
    return CalendarInfo(
        id=entry["id"],
        name=entry.get("summaryOverride") or entry.get("summary") or entry["id"],
        primary=bool(entry.get("primary")),
        access_role=role,
        can_write=role in ("writer", "owner"),
    )


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _expiration(value: Any) -> datetime | None:
    """A channel's `expiration`: Unix milliseconds, serialised as a string."""
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError):
        return None
