"""Typed application keys shared by the API modules."""

from __future__ import annotations

from aiohttp import web

from worker.deps import Deps

DEPS = web.AppKey("deps", Deps)
