"""Admin API: restrictions and whitelinks (barong-behavior.md §7.2), ability on ``Restriction``.

``GET /restrictions`` lists them (filters ``scope``, ``category``, ``range``, ``from``, ``to``; paginated);
``POST`` creates one (201 with the entity), ``PUT`` updates one by ``id`` (200 with the entity),
``DELETE`` removes one by ``id`` (204); ``POST /restrictions/whitelink`` (ability ``create``) answers 201
``{"whitelink_token": ...}``.  Validation, the activity, the announcement to every instance and the
sessions a blocklogin restriction revokes are in ``identity/admin/restrictions.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from identity.admin.actor import Actor
from identity.admin.restrictions import RestrictionAdmin
from identity.http.admin.context import PREFIXES, admin
from identity.http.entities import iso
from identity.http.pagination import paginated
from identity.http.params import read_params
from identity.http.resource.context import Handler
from identity.http.responses import json_response
from identity.models import Restriction

RESTRICTIONS_ADMIN = web.AppKey("restrictions_admin", RestrictionAdmin)


def restriction_entity(restriction: Restriction) -> dict[str, Any]:
    """Barong's ``Restriction`` entity."""
    return {
        "id": restriction.id,
        "category": restriction.category,
        "scope": restriction.scope,
        "value": restriction.value,
        "code": restriction.code,
        "state": restriction.state,
        "created_at": iso(restriction.created_at),
        "updated_at": iso(restriction.updated_at),
    }


@admin("read", "Restriction")
async def list_restrictions(request: web.Request, _actor: Actor) -> web.Response:
    found, total, page = await request.app[RESTRICTIONS_ADMIN].list(await read_params(request))
    return paginated(request, [restriction_entity(r) for r in found], total, page)


@admin("create", "Restriction")
async def create_restriction(request: web.Request, actor: Actor) -> web.Response:
    saved = await request.app[RESTRICTIONS_ADMIN].create(actor, await read_params(request))
    return json_response(restriction_entity(saved.restriction), 201)


@admin("update", "Restriction")
async def update_restriction(request: web.Request, actor: Actor) -> web.Response:
    params = await read_params(request)
    saved = await request.app[RESTRICTIONS_ADMIN].update(actor, params.get("id"), params)
    return json_response(restriction_entity(saved.restriction))


@admin("destroy", "Restriction")
async def delete_restriction(request: web.Request, actor: Actor) -> web.Response:
    params = await read_params(request)
    await request.app[RESTRICTIONS_ADMIN].delete(actor, params.get("id"))
    return web.Response(status=204)


@admin("create", "Restriction")
async def create_whitelink(request: web.Request, actor: Actor) -> web.Response:
    token = await request.app[RESTRICTIONS_ADMIN].whitelink(actor, await read_params(request))
    return json_response({"whitelink_token": token}, 201)


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes under both admin prefixes; ``wrap`` is the application's error mapping."""
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/restrictions", wrap(list_restrictions))
        app.router.add_post(f"{prefix}/restrictions", wrap(create_restriction))
        app.router.add_put(f"{prefix}/restrictions", wrap(update_restriction))
        app.router.add_delete(f"{prefix}/restrictions", wrap(delete_restriction))
        app.router.add_post(f"{prefix}/restrictions/whitelink", wrap(create_whitelink))
