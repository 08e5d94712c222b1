"""The admin API (``/api/v2/barong/admin/...`` and ``/api/v2/admin/...``): permissions, restrictions, users,
labels, profiles, API keys, activities, metrics, levels and abilities, behind the bearer JWT of the decision
endpoint and the caller's abilities (barong-behavior.md §7–9); and the admin console's static page."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from identity.http.admin import activities, console, general, permissions, profiles, restrictions, users
from identity.http.resource.context import Handler

AREAS = (permissions, restrictions, users, profiles, activities, general, console)


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register every admin route; ``wrap`` is the application's error mapping (domain errors → HTTP)."""
    for area in AREAS:
        area.add_routes(app, wrap)
