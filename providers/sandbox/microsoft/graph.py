"""Graph v1.0 calendar handlers: /me, calendars, events, calendarView and its delta.

Handlers parse the request, call `state.py`, render with `render.py` and trigger
notifications; they hold no semantics. Paths are Graph's own:
https://learn.microsoft.com/graph/api/resources/calendar-overview
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web
from yarl import URL

from providers.sandbox.microsoft import events as ev
from providers.sandbox.microsoft import render
from providers.sandbox.microsoft import state as st
from providers.sandbox.microsoft.errors import GraphError
from providers.sandbox.microsoft.grants import Grants
from providers.sandbox.microsoft.notify import Notifier
from providers.sandbox.microsoft.times import parse_query_instant, zone
from providers.sandbox.microsoft.wire import (
    PROFILE_SCOPES,
    READ_SCOPES,
    WRITE_SCOPES,
    Caller,
    applied,
    caller,
    expanded_properties,
    graph_handler,
    json_body,
    origin,
    page_size,
    prefer,
    selected,
)

METADATA = "https://graph.microsoft.com/v1.0/$metadata"
# The three ways to name a calendar in a path: the mailbox default, the default, one by id.
# A mailbox is named /me or /users/{id | userPrincipalName}; a calendar by the mailbox
# (its default), /calendar (the default) or /calendars/{id}.
MAILBOXES = ("/v1.0/me", "/v1.0/users/{user_id}")
CALENDARS = ("", "/calendar", "/calendars/{calendar_id}")


def _skip(request: web.Request) -> int:
    """The $skip option (400 if not a non-negative integer)."""
    raw = request.query.get("$skip", "0") or "0"
    if not raw.isdigit():
        raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for $skip.")
    return int(raw)


class GraphApi:
    """The /v1.0 calendar routes of the Microsoft half."""

    def __init__(self, state: st.GraphState, grants: Grants, notifier: Notifier) -> None:
        self.state = state
        self.grants = grants
        self.notifier = notifier

    def routes(self) -> list[web.RouteDef]:
        """Every calendar route, wrapped to render Graph errors."""
        h = graph_handler
        out = []
        for mailbox in MAILBOXES:
            out += [
                web.get(mailbox, h(self.me)),
                web.get(f"{mailbox}/calendars", h(self.list_calendars)),
                web.get(f"{mailbox}/calendar", h(self.get_calendar)),
                web.get(f"{mailbox}/calendars/{{calendar_id}}", h(self.get_calendar)),
            ]
        for prefix in (m + c for m in MAILBOXES for c in CALENDARS):
            out += [
                web.get(f"{prefix}/events", h(self.list_events)),
                web.post(f"{prefix}/events", h(self.create_event)),
                web.get(f"{prefix}/events/{{event_id}}", h(self.get_event)),
                web.patch(f"{prefix}/events/{{event_id}}", h(self.patch_event)),
                web.delete(f"{prefix}/events/{{event_id}}", h(self.delete_event)),
                web.get(f"{prefix}/events/{{event_id}}/instances", h(self.instances)),
                web.get(f"{prefix}/calendarView", h(self.calendar_view)),
                web.get(f"{prefix}/calendarView/delta", h(self.delta)),
                # The SDKs call OData functions with parentheses: .../delta()
                web.get(f"{prefix}/calendarView/delta()", h(self.delta)),
            ]
        return out

    def fallback(self) -> web.RouteDef:
        """Graph's answer for paths it does not serve (mounted after every other route)."""
        return web.route("*", "/v1.0/{tail:.*}", graph_handler(self.unknown))

    async def unknown(self, request: web.Request) -> web.Response:
        """400 BadRequest naming the segment, as Graph answers unknown paths."""
        segment = request.match_info["tail"].rsplit("/", 1)[-1]
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")

    # -- helpers -----------------------------------------------------------------

    def _caller(self, request: web.Request, scopes: frozenset[str] = READ_SCOPES) -> Caller:
        who = caller(request, self.grants, self.state)
        who.require(scopes)
        named = request.match_info.get("user_id")
        # A delegated token reaches only its own mailbox, by id or by UPN.
        if named is not None and named.lower() not in (who.box.id, who.box.email.lower()):
            raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        return who

    def _calendar(self, request: web.Request, who: Caller) -> st.Calendar:
        return self.state.calendar(who.box, request.match_info.get("calendar_id"))

    def _scoped_calendar(self, request: web.Request) -> str | None:
        """The calendar an /events/{id} path is scoped to (None for /me/events)."""
        if "calendar_id" in request.match_info:
            return request.match_info["calendar_id"]
        route = request.match_info.route.resource
        if route is not None and "/calendar/events/" in route.canonical:
            return ""  # the default calendar; resolved by the caller
        return None

    def _event_json(self, request: web.Request, who: Caller, inst: ev.Instance) -> dict[str, Any]:
        tz = prefer(request).get("outlook.timezone", "UTC")
        zone(tz)  # 400 for an unknown zone
        return render.event_json(inst, who.box, tz, selected(request), expanded_properties(request))

    def _one(self, request: web.Request, who: Caller, inst: ev.Instance, status: int = 200) -> web.Response:
        body = {
            "@odata.context": f"{METADATA}#users('{who.box.id}')/events/$entity",
            **self._event_json(request, who, inst),
        }
        return web.json_response(body, status=status, headers=applied(prefer(request), "outlook.timezone"))

    def _page(self, request: web.Request, who: Caller, items: list[ev.Instance], name: str) -> web.Response:
        prefs = prefer(request)
        size = page_size(request, prefs)
        skip = _skip(request)
        page = items[skip : skip + size]
        tz, select, expand = prefs.get("outlook.timezone", "UTC"), selected(request), expanded_properties(request)
        if page:
            zone(tz)  # 400 for an unknown zone, as ever only when there is an event to render
        body: dict[str, Any] = {
            "@odata.context": f"{METADATA}#users('{who.box.id}')/{name}",
            "value": [render.event_json(inst, who.box, tz, select, expand) for inst in page],
        }
        if skip + size < len(items):
            query = {**request.query, "$skip": str(skip + size)}
            body["@odata.nextLink"] = str(URL(origin(request) + request.path).with_query(query))
        return _json_page(body, headers=applied(prefs, "outlook.timezone", "odata.maxpagesize"))

    def _instance_in_scope(self, request: web.Request, who: Caller) -> ev.Instance:
        scoped = self._scoped_calendar(request)
        calendar_id = who.box.default_calendar_id if scoped == "" else scoped
        return self.state.get_instance(who.box, request.match_info["event_id"], calendar_id)

    # -- /me and calendars ---------------------------------------------------------

    async def me(self, request: web.Request) -> web.Response:
        """GET /me."""
        who = self._caller(request, PROFILE_SCOPES)
        body = {"@odata.context": f"{METADATA}#users/$entity", **render.user_json(who.box)}
        return web.json_response(body)

    async def list_calendars(self, request: web.Request) -> web.Response:
        """GET /me/calendars."""
        who = self._caller(request)
        value = [render.calendar_json(c, who.box) for c in who.box.calendars.values()]
        return web.json_response({"@odata.context": f"{METADATA}#users('{who.box.id}')/calendars", "value": value})

    async def get_calendar(self, request: web.Request) -> web.Response:
        """GET /me/calendar and /me/calendars/{id}."""
        who = self._caller(request)
        calendar = self._calendar(request, who)
        body = {
            "@odata.context": f"{METADATA}#users('{who.box.id}')/calendars/$entity",
            **render.calendar_json(calendar, who.box),
        }
        return web.json_response(body)

    # -- events ------------------------------------------------------------------

    async def list_events(self, request: web.Request) -> web.Response:
        """GET .../events: singles and series masters, unexpanded."""
        who = self._caller(request)
        items = [ev.master_instance(e) for e in self.state.list_events(self._calendar(request, who))]
        return self._page(request, who, items, "events")

    async def create_event(self, request: web.Request) -> web.Response:
        """POST .../events → 201; a repeated transactionId returns the first event."""
        who = self._caller(request, WRITE_SCOPES)
        body = await json_body(request)
        event, created = self.state.create_event(who.box, self._calendar(request, who), body)
        if created:
            self.notifier.changed(who.box.id, event, "created")
        return self._one(request, who, ev.master_instance(event), status=201)

    async def get_event(self, request: web.Request) -> web.Response:
        """GET .../events/{id} (singles, masters, occurrences, exceptions)."""
        who = self._caller(request)
        return self._one(request, who, self._instance_in_scope(request, who))

    async def patch_event(self, request: web.Request) -> web.Response:
        """PATCH .../events/{id} → 200 with the updated event."""
        who = self._caller(request, WRITE_SCOPES)
        body = await json_body(request)
        self._instance_in_scope(request, who)
        inst = self.state.patch_event(who.box, request.match_info["event_id"], body, request.headers.get("If-Match"))
        self.notifier.changed(who.box.id, inst.event, "updated")
        return self._one(request, who, inst)

    async def delete_event(self, request: web.Request) -> web.Response:
        """DELETE .../events/{id} → 204 (an occurrence id cancels that occurrence)."""
        who = self._caller(request, WRITE_SCOPES)
        target = self._instance_in_scope(request, who)
        old = self.state.delete_event(who.box, request.match_info["event_id"], request.headers.get("If-Match"))
        if target.original_start is None:
            self.notifier.changed(who.box.id, old, "deleted")
        else:
            current = self.state.find_event(who.box, old.id)
            self.notifier.changed(who.box.id, current or old, "updated")
        return web.Response(status=204)

    async def instances(self, request: web.Request) -> web.Response:
        """GET .../events/{id}/instances?startDateTime=&endDateTime=."""
        who = self._caller(request)
        master = self._instance_in_scope(request, who).event
        start, end = self._window(request)
        return self._page(request, who, ev.instances(master, start, end), f"events('{master.id}')/instances")

    # -- calendarView and delta ----------------------------------------------------

    def _window(self, request: web.Request) -> tuple[datetime, datetime]:
        start = parse_query_instant(request.query.get("startDateTime"), "startDateTime")
        end = parse_query_instant(request.query.get("endDateTime"), "endDateTime")
        if end <= start:
            raise GraphError(
                400,
                "ErrorInvalidParameter",
                "The value of the parameter 'EndDateTime' must be later than 'StartDateTime'.",
            )
        return start, end

    async def calendar_view(self, request: web.Request) -> web.Response:
        """GET .../calendarView: singles, occurrences and exceptions in the window."""
        who = self._caller(request)
        start, end = self._window(request)
        items = self.state.calendar_view(who.box, self._calendar(request, who), start, end)
        return self._page(request, who, items, "calendarView")

    async def delta(self, request: web.Request) -> web.Response:
        """GET .../calendarView/delta: rounds of pages ending in a deltaLink."""
        who = self._caller(request)
        query = request.query
        sticky: int | None = None  # the page size asked for earlier in the chain
        if "$skiptoken" in query:
            data = st.decode_token(query["$skiptoken"])
            round_id, offset, sticky = str(data.get("r")), int(data.get("o", 0)), data.get("p")
        elif "$deltatoken" in query:
            cursor = st.cursor_from_token(query["$deltatoken"])
            round_id, offset = self.state.replay(who.box, cursor), 0
        else:
            start, end = self._window(request)
            calendar = self._calendar(request, who)
            round_id, offset = self.state.start_round(who.box, calendar, start, end), 0
        return self._delta_page(request, who, round_id, offset, sticky)

    def _delta_page(
        self, request: web.Request, who: Caller, round_id: str, offset: int, sticky: int | None
    ) -> web.Response:
        prefs = prefer(request)
        rnd = self.state.round(round_id, who.box)
        # Clients often send Prefer only on the first request; keep its page size for the chain.
        size = page_size(request, prefs, default=sticky or 10)
        tz = prefs.get("outlook.timezone", "UTC")
        zone(tz)
        value = [
            render.removed_json(item.id) if isinstance(item, st.Removed) else render.event_json(item, who.box, tz)
            for item in rnd.items[offset : offset + size]
        ]
        body: dict[str, Any] = {"@odata.context": f"{METADATA}#Collection(event)", "value": value}
        base = origin(request) + request.path
        if offset + size < len(rnd.items):
            token = st.encode_token({"r": round_id, "o": offset + size, "p": size})
            body["@odata.nextLink"] = str(URL(base).with_query({"$skiptoken": token}))
        else:
            body["@odata.deltaLink"] = str(URL(base).with_query({"$deltatoken": st.token_for(rnd)}))
        return _json_page(body, headers=applied(prefs, "outlook.timezone", "odata.maxpagesize"))


def _json_page(body: dict[str, Any], headers: dict[str, str]) -> web.Response:
    """A listing page as compact UTF-8 JSON, as Graph writes it. msgspec encodes a page of
    500 events ten times faster than json.dumps; json.dumps (with its escapes) stays for the
    lone surrogates msgspec refuses."""
    try:
        data = msgspec.json.encode(body)
    except UnicodeEncodeError:
        data = json.dumps(body).encode()
    return web.Response(body=data, content_type="application/json", charset="utf-8", headers=headers)
