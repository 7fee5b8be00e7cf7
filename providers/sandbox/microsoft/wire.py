"""Request plumbing shared by the Graph handlers: bearer auth, Prefer headers, OData options.

Parsing only; the answers to these questions come from `grants.py` and `state.py`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from providers.sandbox.microsoft.errors import GraphError, graph_error_response
from providers.sandbox.microsoft.grants import AccessToken, Grants
from providers.sandbox.microsoft.state import GraphState, Mailbox

READ_SCOPES = frozenset({"Calendars.Read", "Calendars.ReadWrite", "Calendars.ReadBasic"})
WRITE_SCOPES = frozenset({"Calendars.ReadWrite"})
PROFILE_SCOPES = frozenset({"User.Read", "openid", "profile", "email", "User.ReadBasic.All"})
PROPERTY_ID = re.compile(r"id\s+eq\s+'([^']*)'", re.IGNORECASE)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def graph_handler(handler: Handler) -> Handler:
    """Render GraphError as Graph's JSON error body."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except GraphError as err:
            return graph_error_response(err, request)
        except (ValueError, TypeError) as exc:
            # Malformed input the parsers did not anticipate: Graph answers 400, never 500.
            return graph_error_response(GraphError(400, "BadRequest", f"Invalid request: {exc}"), request)

    return wrapped


@dataclass(frozen=True)
class Caller:
    """Who is calling: the mailbox behind the bearer token and what it may do."""

    box: Mailbox
    token: AccessToken

    def require(self, scopes: frozenset[str]) -> None:
        """403 unless the token carries one of the scopes."""
        if not scopes & set(self.token.grant.scopes):
            raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")


def caller(request: web.Request, grants: Grants, state: GraphState) -> Caller:
    """Authenticate the bearer token (401 InvalidAuthenticationToken otherwise)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
    known = grants.access.get(token.strip())
    live = grants.bearer(token.strip())
    if live is None:
        message = (
            "Lifetime validation failed, the token is expired."
            if known
            else "IDX14100: JWT is not well formed, there are no dots (.)."
        )
        raise GraphError(401, "InvalidAuthenticationToken", message)
    box = state.by_id.get(live.grant.user_id)
    if box is None:
        raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
    return Caller(box, live)


def prefer(request: web.Request) -> dict[str, str]:
    """The Prefer header's preferences (several headers or comma-separated), quotes stripped."""
    out: dict[str, str] = {}
    for header in request.headers.getall("Prefer", []):
        for part in header.split(","):
            key, _, value = part.strip().partition("=")
            if key:
                out[key.strip().lower()] = value.strip().strip('"')
    return out


def page_size(request: web.Request, prefs: dict[str, str], default: int = 10) -> int:
    """$top, else Prefer odata.maxpagesize, else Graph's default of 10."""
    raw = request.query.get("$top") or prefs.get("odata.maxpagesize")
    if raw is None:
        return default
    try:
        size = int(raw)
    except ValueError as exc:
        raise GraphError(400, "BadRequest", f"Invalid page size '{raw}'.") from exc
    if size < 1:
        raise GraphError(400, "BadRequest", "The page size must be positive.")
    return size


def selected(request: web.Request) -> list[str] | None:
    """The $select list, if any."""
    raw = request.query.get("$select")
    return [name.strip() for name in raw.split(",") if name.strip()] if raw else None


def expanded_properties(request: web.Request) -> list[str] | None:
    """Extended-property ids named by $expand=singleValueExtendedProperties($filter=id eq '...')."""
    raw = request.query.get("$expand") or ""
    if "singlevalueextendedproperties" not in raw.lower():
        return None
    return PROPERTY_ID.findall(raw)


def applied(prefs: dict[str, str], *names: str) -> dict[str, str]:
    """The Preference-Applied header for the preferences the response honoured."""
    parts = []
    for name in names:
        if name in prefs:
            value = prefs[name]
            parts.append(f'{name}="{value}"' if name == "outlook.timezone" else f"{name}={value}")
    return {"Preference-Applied": ", ".join(parts)} if parts else {}


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (400 BadRequest otherwise)."""
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GraphError(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and "
            "payload is of valid JSON format.",
        ) from exc
    if not isinstance(data, dict):
        raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
    return data


def origin(request: web.Request) -> str:
    """Scheme and host the client used, for absolute links."""
    return str(request.url.origin())
