"""GET /oauth/callback: hand the code and state to jobs.connect.complete, answer with a small page.

The page says "connected" or what went wrong in words a person can act on; it never shows
a stack trace, a token or the provider's raw error text.
"""

from __future__ import annotations

import asyncio
import html
import re

from aiohttp import web

from jobs import connect
from worker.api.keys import DEPS
from worker.logging import get_logger

routes = web.RouteTableDef()
log = get_logger(__name__)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto">
<h1>{title}</h1>
<p id="result" data-code="{code}">{message}</p>
<p>You can close this window.</p>
</body></html>
"""

# Status of the page for each outcome: 200 when the flow ended as the person chose.
STATUS = {
    "connected": 200,
    "consent_denied": 200,
    "provider_unavailable": 503,
    "connection_gone": 410,
}


def page(code: str, title: str, message: str) -> web.Response:
    """The result page; the outcome code is also in a data attribute for tests and scripts."""
    text = PAGE.format(title=html.escape(title), code=html.escape(code), message=html.escape(message))
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return web.Response(text=text, content_type="text/html", status=STATUS.get(code, 400), headers=headers)


async def _refused(request: web.Request, state: str, error: str) -> web.Response:
    """The provider redirected with an error (the person pressed Deny, or the request was bad)."""
    try:
        await connect.reject(request.app[DEPS], state, error)
    except connect.ConnectError as exc:
        return page(exc.code, "Not connected", exc.message)
    if error == "access_denied":
        return page("consent_denied", "Not connected", "Access was not granted, so no calendar was connected.")
    return page("provider_error", "Not connected", "The provider refused the request. Ask for a new link.")


@routes.get(connect.CALLBACK_PATH)
async def callback(request: web.Request) -> web.Response:
    """The provider's redirect after consent: code + state, or error + state."""
    deps = request.app[DEPS]
    query = request.query
    state, code, error = query.get("state", ""), query.get("code", ""), query.get("error", "")
    if error:
        # OAuth error codes are short ASCII words; anything else is not worth storing as is.
        return await _refused(request, state, re.sub(r"[^A-Za-z0-9_.-]", "", error)[:100] or "unknown_error")
    if not code or not state:
        return page("invalid_request", "Not connected", "This address needs the code and state the provider sends.")
    try:
        async with asyncio.timeout(connect.interactive_deadline(deps.settings)):
            done = await connect.complete(deps, code, state)
    except connect.ConnectError as exc:
        return page(exc.code, "Not connected", exc.message)
    except connect.NotConfigured:
        return page("provider_unavailable", "Not connected", "This provider is not configured on the server.")
    except TimeoutError:
        return page("provider_unavailable", "Not connected", "The provider took too long to answer. Try again.")
    provider = "Google" if done.provider == "google" else "Outlook"
    return page("connected", "Calendar connected", f"{provider} calendar of {done.account_email} is connected.")
