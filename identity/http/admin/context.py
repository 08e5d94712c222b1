"""What every admin handler needs: the caller check (as the resource API's), then the caller's ability.

``admin(action, subject)`` turns ``handler(request, actor)`` into an aiohttp handler that checks the
request as the gateway does (the upstream JWT, the session or API key it was minted for, and the
permission table for this method and path: 401 ``authz.invalid_permission``), loads its user, and answers
401 ``admin.ability.not_permitted`` unless the user's role may ``action`` (read, create, update, destroy)
the ``subject`` (User, Permission, ...) according to the abilities file.  Both are checked before the
parameters are read, so a caller without them learns nothing about them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from identity.admin.abilities import Abilities
from identity.admin.actor import Actor
from identity.http.resource.context import RESOURCE, Handler, current_user

PREFIXES = ("/api/v2/barong/admin", "/api/v2/admin")

AdminHandler = Callable[[web.Request, Actor], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class AdminContext:
    abilities: Abilities


ADMIN = web.AppKey("admin", AdminContext)


async def current_actor(request: web.Request) -> Actor:
    """The admin behind the request's upstream JWT (checked as :func:`current_user` does), with the client's
    address and agent."""
    user = await current_user(request)
    return Actor(user, request.app[RESOURCE].client_info(request))


def admin(action: str | None, subject: str | None) -> Callable[[AdminHandler], Handler]:
    """``handler(request, actor)`` behind the caller check and the ability ``action`` on ``subject``
    (``None``: any signed-in user, as Barong's ``GET /admin/abilities``)."""

    def decorate(handler: AdminHandler) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            actor = await current_actor(request)
            if action is not None and subject is not None:
                assert actor.user is not None
                request.app[ADMIN].abilities.check(actor.user.role, action, subject)
            return await handler(request, actor)

        handle.__name__ = getattr(handler, "__name__", "handle")
        handle.__doc__ = handler.__doc__
        return handle

    return decorate
