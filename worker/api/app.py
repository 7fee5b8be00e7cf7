"""build_app(deps): the aiohttp application with every route and middleware."""

from __future__ import annotations

from aiohttp import web

from worker.api import (
    appointments,
    availability,
    bulk,
    calendars,
    health,
    notify,
    oauth,
    openapi,
    resources,
    status_page,
    webhooks,
)
from worker.api.auth import VERIFIER, TokenVerifier
from worker.api.keys import DEPS
from worker.api.middleware import access_middleware
from worker.deps import Deps

# Each API module exposes `routes`; a new module is one line here.
ROUTE_MODULES = [
    health,
    notify,
    availability,
    status_page,
    webhooks,
    calendars,
    oauth,
    resources,
    openapi,
    appointments,
    bulk,
]


def build_app(deps: Deps) -> web.Application:
    """The control API, webhooks, OAuth callback and health endpoints."""
    app = web.Application(
        middlewares=[access_middleware],
        client_max_size=deps.settings.server.max_body_bytes,
    )
    app[DEPS] = deps
    app[VERIFIER] = TokenVerifier(deps.settings.auth)
    for module in ROUTE_MODULES:
        app.add_routes(module.routes)
    return app
