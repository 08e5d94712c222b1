"""Resource API: phones (being built)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from identity.http.resource.context import Handler


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes under both resource prefixes; ``wrap`` is the application's error mapping."""
