"""Admin API: permissions (barong-behavior.md §7.1), ability on ``Permission``.

``GET /permissions`` lists them in id order (paginated); ``POST`` creates one (201 with the entity),
``PUT`` updates one by ``id`` (200 with the entity), ``DELETE`` removes one by ``id`` (204).  Parameters
come from the query string or a JSON or form body; validation, the activity and the announcement to every
instance are in ``identity/admin/permissions.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from identity.admin.actor import Actor
from identity.admin.permissions import PermissionAdmin
from identity.http.admin.context import PREFIXES, admin
from identity.http.entities import iso
from identity.http.pagination import paginated
from identity.http.params import read_params
from identity.http.resource.context import Handler
from identity.http.responses import json_response
from identity.models import Permission
from identity.paging import page_params

PERMISSIONS_ADMIN = web.AppKey("permissions_admin", PermissionAdmin)


def permission_entity(permission: Permission) -> dict[str, Any]:
    """Barong's ``Permission`` entity."""
    return {
        "id": permission.id,
        "action": permission.action,
        "role": permission.role,
        "verb": permission.verb,
        "path": permission.path,
        "topic": permission.topic,
        "created_at": iso(permission.created_at),
        "updated_at": iso(permission.updated_at),
    }


@admin("read", "Permission")
async def list_permissions(request: web.Request, _actor: Actor) -> web.Response:
    page = page_params(await read_params(request))
    found, total = await request.app[PERMISSIONS_ADMIN].list(page)
    return paginated(request, [permission_entity(p) for p in found], total, page)


@admin("create", "Permission")
async def create_permission(request: web.Request, actor: Actor) -> web.Response:
    created = await request.app[PERMISSIONS_ADMIN].create(actor, await read_params(request))
    return json_response(permission_entity(created), 201)


@admin("update", "Permission")
async def update_permission(request: web.Request, actor: Actor) -> web.Response:
    params = await read_params(request)
    updated = await request.app[PERMISSIONS_ADMIN].update(actor, params.get("id"), params)
    return json_response(permission_entity(updated))


@admin("destroy", "Permission")
async def delete_permission(request: web.Request, actor: Actor) -> web.Response:
    params = await read_params(request)
    await request.app[PERMISSIONS_ADMIN].delete(actor, params.get("id"))
    return web.Response(status=204)


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes under both admin prefixes; ``wrap`` is the application's error mapping."""
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/permissions", wrap(list_permissions))
        app.router.add_post(f"{prefix}/permissions", wrap(create_permission))
        app.router.add_put(f"{prefix}/permissions", wrap(update_permission))
        app.router.add_delete(f"{prefix}/permissions", wrap(delete_permission))
