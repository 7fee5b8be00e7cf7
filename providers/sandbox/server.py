"""The sandbox's aiohttp application: both provider halves, middlewares, control routes.

`build_app` mounts each half's real API paths, remembers which routes belong to which
provider (so faults and the request log can tell Google from Microsoft by route, not by
guessing from paths), and adds the `/_sandbox/` control surface. `serve` is the
standalone runner behind `calsync sandbox`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aiohttp import web

from providers.sandbox import control

if TYPE_CHECKING:
    from providers.sandbox.context import ProviderHalf, SandboxContext

HALVES_KEY = web.AppKey("sandbox_halves", dict)
CONTEXT_KEY = web.AppKey("sandbox_context", object)


def build_app(halves: Sequence[ProviderHalf], ctx: SandboxContext) -> web.Application:
    """One application serving every half plus the control routes."""
    app = web.Application(client_max_size=64 * 1024 * 1024)  # bulk loads are big
    owner: dict[int, str] = {}
    for half in halves:
        before = {id(r) for r in app.router.resources()}
        half.add_routes(app)
        owner.update({id(r): half.name for r in app.router.resources() if id(r) not in before})
        renderer = getattr(half, "error_body", None)
        if renderer is not None:
            ctx.faults.renderers[half.name] = renderer

    def provider_of(request: web.Request) -> str | None:
        route = request.match_info.route
        resource = route.resource if route is not None else None
        return owner.get(id(resource)) if resource is not None else None

    app.middlewares.append(ctx.requests.middleware(provider_of))
    app.middlewares.append(ctx.faults.middleware(provider_of))
    by_name = {half.name: half for half in halves}
    app[HALVES_KEY] = by_name
    app[CONTEXT_KEY] = ctx
    control.add_routes(app, by_name, ctx)
    for half in halves:
        extra = getattr(half, "add_control_routes", None)
        if extra is not None:
            extra(app)
    return app


async def serve(host: str = "127.0.0.1", port: int = 8765) -> None:
    """Run the sandbox until cancelled, printing its base URLs and the ready line."""
    from providers.sandbox import start_sandbox

    sandbox = await start_sandbox(host=host, port=port)
    try:
        for name, url in sandbox.urls().items():
            print(f"{name}: {url}", flush=True)
        print(f"sandbox ready at {sandbox.url}", flush=True)
        await asyncio.Event().wait()
    finally:
        await sandbox.stop()
