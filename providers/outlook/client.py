"""GraphCalendarClient: Graph calendars, calendarView delta, appointment writes, subscriptions.

Implements the delta guide (https://learn.microsoft.com/graph/delta-query-events): a round
starts at calendarView/delta over the window and follows @odata.nextLink to the
@odata.deltaLink, whose whole URL is the cursor. Links are followed only to the configured
Graph host. Status codes, retries and tokens are handled in providers/http.py and tokens.py.
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
    ProviderEvent,
    Subscription,
    Window,
    WrittenEvent,
)
from providers.http import Authenticator, ProviderHttp, quote_segment, read_ahead
from providers.outlook.mapping import READER, appointment_body, graph_time, parse_event, transaction_id_for
from providers.outlook.wire import Calendar, DeltaPage, Event
from providers.parsing import ListingDecoder, parse_page, single_event

# 500 events per delta page: large pages, well under Graph's response-size limits.
DELTA_PAGE_SIZE = 500
# Every event time comes back in UTC, the only zone mapping.py needs to know.
_PREFER_UTC = 'outlook.timezone="UTC"'
_EVENT_HEADERS = {"Prefer": _PREFER_UTC}
_DELTA_PAGE: ListingDecoder[DeltaPage[Any]] = ListingDecoder(DeltaPage, Event, "value")


class GraphCalendarClient:
    """One mailbox's view of Outlook calendars (satisfies providers.base.CalendarClient)."""

    def __init__(
        self,
        http: ProviderHttp,
        tokens: Authenticator,
        *,
        api_base: str | None = None,
        budget_key: str | None = None,
        interactive: bool = False,
        page_size: int = DELTA_PAGE_SIZE,
    ):
        self._http = http
        self._delta_headers = {"Prefer": f"odata.maxpagesize={page_size}, {_PREFER_UTC}"}
        self._tokens = tokens
        self._base = (api_base or http.api_base).rstrip("/")
        self._budget_key = budget_key
        self._interactive = interactive

    async def list_calendars(self) -> list[CalendarInfo]:
        """Every calendar in the mailbox."""
        calendars: list[CalendarInfo] = []
        url: str | None = self._base + "/me/calendars?$top=100"
        while url is not None:
            body = await self._call("GET", url)
            calendars += [_calendar(c) for c in body.get("value") or ()]
            url = self._next(body.get("@odata.nextLink"))
        return calendars

    async def list_changes(self, calendar_id: str, cursor: str | None, window: Window) -> AsyncIterator[ChangePage]:
        """A new delta round over `window` (cursor None), or changes since deltaLink `cursor`."""
        full = cursor is None
        url = self._http.check_link(cursor) if cursor is not None else self._delta_start(calendar_id, window)

        def follow(body: DeltaPage[Any]) -> Awaitable[DeltaPage[Any]] | None:
            link = self._next(body.next_link)
            return self._delta_page(link) if link else None

        async for body in read_ahead(self._delta_page(url), follow):
            last = self._next(body.next_link) is None
            delta = body.delta_link if last else None
            if last and not delta:
                raise errors.MalformedResponseError("delta page carries neither nextLink nor deltaLink")
            page = await parse_page(body.value or (), self._http.check_link(delta) if delta else None, full, READER)
            if last or page.events or page.quarantined:
                yield page

    async def get_event(self, calendar_id: str, event_id: str) -> ProviderEvent:
        """One event (NotFoundError when it does not exist)."""
        body = await self._call("GET", self._event_url(event_id), headers=_EVENT_HEADERS)
        return _event(body)

    async def create_event(self, calendar_id: str, body: AppointmentBody) -> WrittenEvent:
        """Create the appointment with a transactionId, so a repeated POST cannot duplicate it.

        A repeat returns the event the first attempt made; if that one was written for an
        older version of the appointment (a lost answer, then a reschedule), it is patched.
        """
        payload = {
            **appointment_body(body),
            "transactionId": transaction_id_for(body.appointment_id),
        }
        raw = await self._call("POST", self._events_url(calendar_id), json_body=payload, headers=_EVENT_HEADERS)
        written = _written(raw)
        if _same_times(raw, payload):
            return written
        return await self.patch_event(calendar_id, written.id, body)

    async def patch_event(
        self, calendar_id: str, event_id: str, body: AppointmentBody, *, etag: str | None = None
    ) -> WrittenEvent:
        """Replace calsync's fields of an event (PreconditionFailedError when `etag` is stale)."""
        headers = {**_EVENT_HEADERS, "If-Match": etag} if etag else _EVENT_HEADERS
        raw = await self._call("PATCH", self._event_url(event_id), json_body=appointment_body(body), headers=headers)
        return _written(raw)

    async def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete an event; one already gone counts as success."""
        try:
            await self._call("DELETE", self._event_url(event_id))
        except (errors.NotFoundError, errors.GoneError):
            return

    async def subscribe(
        self,
        calendar_id: str,
        *,
        notification_url: str,
        lifecycle_url: str | None,
        client_state: str,
        expires_at: datetime,
    ) -> Subscription:
        """Subscribe to one calendar's event changes (Graph validates the URL first)."""
        payload: dict[str, Any] = {
            "changeType": "created,updated,deleted",
            "notificationUrl": notification_url,
            "resource": _subscription_resource(calendar_id),
            "expirationDateTime": _graph_instant(expires_at),
            "clientState": client_state,
        }
        if lifecycle_url:
            payload["lifecycleNotificationUrl"] = lifecycle_url
        return _subscription(await self._call("POST", self._base + "/subscriptions", json_body=payload))

    async def renew(self, subscription_id: str, expires_at: datetime) -> Subscription:
        """Move a subscription's expiry (also reauthorises it); NotFoundError if it is gone."""
        payload = {"expirationDateTime": _graph_instant(expires_at)}
        url = f"{self._base}/subscriptions/{quote_segment(subscription_id)}"
        return _subscription(await self._call("PATCH", url, json_body=payload))

    async def unsubscribe(self, subscription_id: str) -> None:
        """Delete a subscription; one already gone counts as success."""
        try:
            await self._call("DELETE", f"{self._base}/subscriptions/{quote_segment(subscription_id)}")
        except errors.NotFoundError:
            return

    def _delta_start(self, calendar_id: str, window: Window) -> str:
        query = f"startDateTime={_iso(window.start)}&endDateTime={_iso(window.end)}"
        if calendar_id == "primary":
            return f"{self._base}/me/calendarView/delta?{query}"
        return f"{self._base}/me/calendars/{quote_segment(calendar_id)}/calendarView/delta?{query}"

    def _events_url(self, calendar_id: str) -> str:
        if calendar_id == "primary":
            return f"{self._base}/me/events"
        return f"{self._base}/me/calendars/{quote_segment(calendar_id)}/events"

    def _event_url(self, event_id: str) -> str:
        return f"{self._base}/me/events/{quote_segment(event_id)}"

    async def _delta_page(self, url: str) -> DeltaPage[Any]:
        response = await self._http.request(
            "GET",
            url,
            auth=self._tokens,
            headers=self._delta_headers,
            budget_key=self._budget_key,
            interactive=self._interactive,
            decode=_DELTA_PAGE,
        )
        if not isinstance(response.body, DeltaPage):
            raise errors.MalformedResponseError("calendarView/delta answered without a body")
        return response.body

    def _next(self, link: Any) -> str | None:
        return self._http.check_link(link) if isinstance(link, str) and link else None

    async def _call(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        response = await self._http.request(
            method,
            url,
            auth=self._tokens,
            json_body=json_body,
            headers=headers,
            budget_key=self._budget_key,
            interactive=self._interactive,
        )
        if response.body is None:
            return {}
        if not isinstance(response.body, dict):
            raise errors.MalformedResponseError(f"expected a JSON object from {method}")
        return response.body


def _event(raw: dict[str, Any]) -> ProviderEvent:
    return single_event(raw, parse_event)


def _written(raw: dict[str, Any]) -> WrittenEvent:
    if not isinstance(raw.get("id"), str):
        raise errors.MalformedResponseError("written event has no id")
    return WrittenEvent(raw["id"], raw.get("@odata.etag"))


def _same_times(raw: dict[str, Any], payload: dict[str, Any]) -> bool:
    """Whether the event Graph returned has the times we asked for (compared as instants)."""
    returned, wanted = parse_event(raw), parse_event({**payload, "id": "x"})
    if not isinstance(returned, ProviderEvent) or not isinstance(wanted, ProviderEvent):
        return False
    return (returned.start, returned.end, returned.summary) == (
        wanted.start,
        wanted.end,
        wanted.summary,
    )


def _calendar(raw: Calendar) -> CalendarInfo:
    can_edit = bool(raw.get("canEdit", True))
    return CalendarInfo(
        id=raw["id"],
        name=raw.get("name") or raw["id"],
        primary=bool(raw.get("isDefaultCalendar")),
        access_role="owner" if can_edit else "reader",
        can_write=can_edit,
    )


def _subscription(raw: dict[str, Any]) -> Subscription:
    try:
        expires_at = datetime.fromisoformat(raw["expirationDateTime"])
    except (KeyError, TypeError, ValueError) as exc:
        raise errors.MalformedResponseError("subscription without a readable expiry") from exc
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    return Subscription(id=raw["id"], expires_at=expires_at, client_state=raw.get("clientState"))


def _subscription_resource(calendar_id: str) -> str:
    if calendar_id == "primary":
        return "/me/events"
    return f"/me/calendars/{quote_segment(calendar_id)}/events"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _graph_instant(value: datetime) -> str:
    return graph_time(value) + "Z"
