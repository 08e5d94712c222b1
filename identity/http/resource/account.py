"""``/resource/users/...``: the signed-in user's own account (barong-behavior.md §4.6)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from identity.http.resource.context import PREFIXES, Handler, authenticated
from identity.http.responses import full_user, json_response
from identity.models import User


async def get_me(request: web.Request, user: User) -> web.Response:
    return json_response(await full_user(request, user))


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes under both resource prefixes; ``wrap`` is the application's error mapping."""
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/users/me", wrap(authenticated(get_me)))
