"""The /calendar/v3/ wire handlers: parse the request, call the state, render Google JSON.

Served methods: calendarList.list/get, calendars.get, events.list/get/insert/update/
patch/delete/instances/watch and channels.stop. Bearer tokens are checked on every call
(401 authError when missing, unknown, expired or revoked), and writes need a scope
that allows them (403 insufficientPermissions otherwise).
See https://developers.google.com/workspace/calendar/api/v3/reference
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, tzinfo
from functools import wraps
from typing import Any

from aiohttp import web

from providers.sandbox.google import events as ev
from providers.sandbox.google.errors import GoogleError, auth_error
from providers.sandbox.google.grants import AccessToken, Grants
from providers.sandbox.google.listing import DEFAULT_MAX, MAX_RESULTS, Lister, Query, check
from providers.sandbox.google.push import Pusher
from providers.sandbox.google.state import Calendar, CalendarState, Channel

API = "/calendar/v3"
SCOPE_PREFIX = "https://www.googleapis.com/auth/"
READ_SCOPES = {
    "calendar", "calendar.readonly", "calendar.events", "calendar.events.readonly",
    "calendar.events.owned", "calendar.events.owned.readonly",
}  # fmt: skip
WRITE_SCOPES = {"calendar", "calendar.events", "calendar.events.owned"}
LIST_SCOPES = {"calendar", "calendar.readonly", "calendar.calendarlist"}
LIST_SCOPES |= {"calendar.calendarlist.readonly"}
CALENDAR_LIST_MAX = 250
CALENDAR_LIST_DEFAULT = 100

Handler = Callable[..., Awaitable[web.StreamResponse]]


def google_errors(handler: Handler) -> Handler:
    """Render GoogleError as Google's JSON error body (decorates methods)."""

    @wraps(handler)
    async def wrapped(*args: Any) -> web.StreamResponse:
        try:
            return await handler(*args)
        except GoogleError as exc:
            return exc.response()

    return wrapped


def parse_bool(value: str | None, name: str) -> bool:
    """`true`/`false` query values."""
    if value is None:
        return False
    if value not in ("true", "false"):
        raise GoogleError("invalid", f"Invalid boolean value: '{value}'", location=name)
    return value == "true"


def parse_time(value: str | None, name: str) -> datetime | None:
    """RFC 3339 with a mandatory offset (milliseconds are ignored)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise GoogleError("badRequest", "Bad Request", location=name)
    return moment.replace(microsecond=0).astimezone(UTC)


def parse_int(value: str | None, name: str, default: int) -> int:
    """A positive integer query value."""
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise GoogleError(
            "invalid",
            f"Invalid value '{value}'. Values must be within the range: [1, {MAX_RESULTS}]",
            location=name,
        )
    return number


def parse_query(request: web.Request) -> Query:
    """An events.list (or watch) Query from the URL."""
    q = request.query
    order_by = q.get("orderBy")
    if order_by not in (None, "startTime", "updated"):
        raise GoogleError("invalid", f"Invalid value for orderBy: {order_by}", location="orderBy")
    query = Query(
        single_events=parse_bool(q.get("singleEvents"), "singleEvents"),
        show_deleted=parse_bool(q.get("showDeleted"), "showDeleted"),
        time_min=parse_time(q.get("timeMin"), "timeMin"),
        time_max=parse_time(q.get("timeMax"), "timeMax"),
        updated_min=parse_time(q.get("updatedMin"), "updatedMin"),
        order_by=order_by,
        ical_uid=q.get("iCalUID"),
        q=q.get("q"),
        private_props=tuple(q.getall("privateExtendedProperty", [])),
        shared_props=tuple(q.getall("sharedExtendedProperty", [])),
        event_types=tuple(q.getall("eventTypes", [])),
        max_results=min(parse_int(q.get("maxResults"), "maxResults", DEFAULT_MAX), MAX_RESULTS),
        page_token=q.get("pageToken"),
        sync_token=q.get("syncToken"),
    )
    check(query, q.keys())
    return query


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or 400 parseError."""
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GoogleError("parseError", "Parse Error") from exc
    if not isinstance(data, dict):
        raise GoogleError("parseError", "Parse Error")
    return data


class CalendarApi:
    """Handlers bound to the Google half's state."""

    def __init__(self, state: CalendarState, grants: Grants, pusher: Pusher, base_url: Callable[[], str]):
        self.state = state
        self.grants = grants
        self.pusher = pusher
        self.lister = Lister(state)
        self.base_url = base_url

    def token(self, request: web.Request, allowed: set[str]) -> AccessToken:
        """The caller's live access token with one of the allowed scopes."""
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        found = self.grants.bearer(value.strip(), self.state.clock()) if scheme.lower() == "bearer" else None
        if found is None:
            raise auth_error()
        granted = {s.removeprefix(SCOPE_PREFIX) for s in found.scope.split()}
        if not granted & allowed:
            raise GoogleError(
                "insufficientPermissions",
                "Request had insufficient authentication scopes.",
                status=403,
            )
        return found

    def calendar(self, request: web.Request, allowed: set[str]) -> Calendar:
        """The calendar in the path, which the caller must own."""
        token = self.token(request, allowed)
        return self.state.calendar_for(token.email, request.match_info["calendar_id"])

    def zone(self, request: web.Request, cal: Calendar) -> tzinfo:
        """The response zone: the timeZone parameter, else the calendar's."""
        name = request.query.get("timeZone")
        return ev.zone(name, "request") if name else cal.zone

    def render(
        self, body: dict[str, Any], request: web.Request, cal: Calendar, minimal: bool = False
    ) -> dict[str, Any]:
        """One event as the response shows it."""
        out = ev.render(body, self.zone(request, cal), minimal=minimal)
        limit = request.query.get("maxAttendees")
        if limit and "attendees" in out and len(out["attendees"]) > int(limit):
            out["attendees"] = out["attendees"][: int(limit)]
            out["attendeesOmitted"] = True
        return out

    # calendarList / calendars

    def list_entry(self, cal: Calendar) -> dict[str, Any]:
        """A calendar#calendarListEntry."""
        entry = {
            "kind": "calendar#calendarListEntry",
            "etag": f'"{cal.seq}"',
            "id": cal.id,
            "summary": cal.summary,
            "timeZone": cal.time_zone,
            "colorId": "14",
            "backgroundColor": "#9fe1e7",
            "foregroundColor": "#000000",
            "selected": True,
            "accessRole": "owner",
            "defaultReminders": [],
        }
        if cal.primary:
            entry["primary"] = True
        return entry

    @google_errors
    async def calendar_list(self, request: web.Request) -> web.Response:
        token = self.token(request, LIST_SCOPES)
        if "syncToken" in request.query and "minAccessRole" in request.query:
            raise GoogleError("invalid", "Sync token cannot be used with minAccessRole.")
        size = min(
            parse_int(request.query.get("maxResults"), "maxResults", CALENDAR_LIST_DEFAULT),
            CALENDAR_LIST_MAX,
        )
        offset = int(request.query.get("pageToken", "0") or 0)
        cals = [self.state.calendars[c] for c in self.state.user(token.email).calendars]
        body: dict[str, Any] = {
            "kind": "calendar#calendarList",
            "etag": f'"{max(c.seq for c in cals)}"',
            "items": [self.list_entry(c) for c in cals[offset : offset + size]],
        }
        if offset + size < len(cals):
            body["nextPageToken"] = str(offset + size)
        else:
            body["nextSyncToken"] = f"cl{self.state.seq}"
        return web.json_response(body)

    @google_errors
    async def calendar_list_get(self, request: web.Request) -> web.Response:
        return web.json_response(self.list_entry(self.calendar(request, LIST_SCOPES)))

    @google_errors
    async def calendars_get(self, request: web.Request) -> web.Response:
        cal = self.calendar(request, LIST_SCOPES | READ_SCOPES)
        body = {"kind": "calendar#calendar", "etag": f'"{cal.seq}"', "id": cal.id}
        return web.json_response({**body, "summary": cal.summary, "timeZone": cal.time_zone})

    # events

    @google_errors
    async def events_list(self, request: web.Request) -> web.Response:
        cal = self.calendar(request, READ_SCOPES)
        page = self.lister.page(cal, parse_query(request))
        body: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": f'"{cal.seq}"',
            "summary": cal.summary,
            "description": "",
            "updated": ev.timestamp(self.state.clock()),
            "timeZone": request.query.get("timeZone") or cal.time_zone,
            "accessRole": "owner",
            "defaultReminders": [],
            "items": [self.render(r.body, request, cal, minimal=page.minimal and r.cancelled) for r in page.records],
        }
        if page.next_page_token:
            body["nextPageToken"] = page.next_page_token
        if page.next_sync_token:
            body["nextSyncToken"] = page.next_sync_token
        return web.json_response(body)

    @google_errors
    async def events_instances(self, request: web.Request) -> web.Response:
        cal = self.calendar(request, READ_SCOPES)
        master = cal.events.get(request.match_info["event_id"])
        if master is None or not master.recurring:
            raise GoogleError("notFound")
        query = parse_query(request)
        query = Query(
            single_events=True, show_deleted=query.show_deleted, time_min=query.time_min,
            time_max=query.time_max, ical_uid=master.body.get("iCalUID"),
            max_results=query.max_results, page_token=query.page_token,
        )  # fmt: skip
        page = self.lister.page(cal, query)
        items = [self.render(r.body, request, cal) for r in page.records if r.body.get("recurringEventId") == master.id]
        body: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": f'"{cal.seq}"',
            "summary": cal.summary,
        }
        body.update(
            {
                "timeZone": cal.time_zone,
                "accessRole": "owner",
                "defaultReminders": [],
                "items": items,
            }
        )
        if page.next_page_token:
            body["nextPageToken"] = page.next_page_token
        return web.json_response(body)

    @google_errors
    async def events_get(self, request: web.Request) -> web.StreamResponse:
        cal = self.calendar(request, READ_SCOPES)
        body = self.state.get(cal, request.match_info["event_id"])
        if request.headers.get("If-None-Match") == body["etag"]:
            return web.Response(status=304)
        return web.json_response(self.render(body, request, cal))

    @google_errors
    async def events_insert(self, request: web.Request) -> web.Response:
        cal = self.calendar(request, WRITE_SCOPES)
        body = self.state.insert(cal, await json_body(request))
        return web.json_response(self.render(body, request, cal))

    @google_errors
    async def events_update(self, request: web.Request) -> web.Response:
        cal = self.calendar(request, WRITE_SCOPES)
        event_id, if_match = request.match_info["event_id"], request.headers.get("If-Match")
        body = self.state.update(cal, event_id, await json_body(request), if_match)
        return web.json_response(self.render(body, request, cal))

    @google_errors
    async def events_patch(self, request: web.Request) -> web.Response:
        cal = self.calendar(request, WRITE_SCOPES)
        event_id, if_match = request.match_info["event_id"], request.headers.get("If-Match")
        body = self.state.patch(cal, event_id, await json_body(request), if_match)
        return web.json_response(self.render(body, request, cal))

    @google_errors
    async def events_delete(self, request: web.Request) -> web.Response:
        cal = self.calendar(request, WRITE_SCOPES)
        event_id, if_match = request.match_info["event_id"], request.headers.get("If-Match")
        self.state.delete(cal, event_id, if_match)
        return web.Response(status=204)

    # push

    def channel_json(self, channel: Channel) -> dict[str, Any]:
        """An api#channel."""
        body = {
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": channel.resource_id,
            "resourceUri": channel.resource_uri,
            "expiration": str(int(channel.expiration.timestamp() * 1000)),
        }
        if channel.token is not None:
            body["token"] = channel.token
        return body

    @google_errors
    async def events_watch(self, request: web.Request) -> web.Response:
        cal = self.calendar(request, READ_SCOPES)
        parse_query(request)
        uri = f"{self.base_url()}{API}/calendars/{cal.id}/events?alt=json"
        channel = self.state.watch(cal, await json_body(request), uri)
        self.pusher.opened(channel)
        return web.json_response(self.channel_json(channel))

    @google_errors
    async def channels_stop(self, request: web.Request) -> web.Response:
        self.token(request, READ_SCOPES | LIST_SCOPES)
        data = await json_body(request)
        self.state.stop(data.get("id"), data.get("resourceId"))
        return web.Response(status=204)

    @google_errors
    async def unknown(self, request: web.Request) -> web.Response:
        """Methods the sandbox does not serve answer as Google does for unknown paths."""
        raise GoogleError("notFound")

    def add_routes(self, app: web.Application) -> None:
        """Mount the Calendar API paths."""
        events = API + "/calendars/{calendar_id}/events"
        app.router.add_routes(
            [
                web.get(API + "/users/me/calendarList", self.calendar_list),
                web.get(API + "/users/me/calendarList/{calendar_id}", self.calendar_list_get),
                web.get(API + "/calendars/{calendar_id}", self.calendars_get),
                web.get(events, self.events_list),
                web.post(events, self.events_insert),
                web.post(events + "/watch", self.events_watch),
                web.get(events + "/{event_id}/instances", self.events_instances),
                web.get(events + "/{event_id}", self.events_get),
                web.put(events + "/{event_id}", self.events_update),
                web.patch(events + "/{event_id}", self.events_patch),
                web.delete(events + "/{event_id}", self.events_delete),
                web.post(API + "/channels/stop", self.channels_stop),
                web.route("*", API + "/{tail:.*}", self.unknown),
            ]
        )
