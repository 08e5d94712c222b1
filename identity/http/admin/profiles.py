"""Admin API: users' profiles (seed 2.4 ``/admin/profiles``).

``GET /profiles`` (read Profile) lists every profile with its user's uid, paginated; ``PUT /profiles``
(update Profile) changes a user's profile and its state; ``POST /profiles`` (create Profile — Barong checks
no ability there, we do) creates one, ``201``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from aiohttp import web

from identity.admin.actor import Actor
from identity.http.admin.context import PREFIXES, admin
from identity.http.admin.user_entities import admin_profile_entity
from identity.http.admin.users import USERS_ADMIN
from identity.http.pagination import paginated
from identity.http.params import read_params
from identity.http.resource.context import RESOURCE, Handler
from identity.http.responses import json_response


def _today(request: web.Request) -> date:
    return datetime.fromtimestamp(request.app[RESOURCE].clock(), UTC).date()


@admin("read", "Profile")
async def list_profiles(request: web.Request, _actor: Actor) -> web.StreamResponse:
    found, total, page = await request.app[USERS_ADMIN].profiles.list(dict(request.query))
    return paginated(request, [admin_profile_entity(profile, uid) for profile, uid in found], total, page)


@admin("update", "Profile")
async def update_profile(request: web.Request, actor: Actor) -> web.StreamResponse:
    profile = await request.app[USERS_ADMIN].profiles.update(
        actor, await read_params(request), _today(request)
    )
    return json_response(admin_profile_entity(profile))


@admin("create", "Profile")
async def create_profile(request: web.Request, actor: Actor) -> web.StreamResponse:
    profile = await request.app[USERS_ADMIN].profiles.create(
        actor, await read_params(request), _today(request)
    )
    return json_response(admin_profile_entity(profile), 201)


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes under both admin prefixes; ``wrap`` is the application's error mapping."""
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/profiles", wrap(list_profiles))
        app.router.add_put(f"{prefix}/profiles", wrap(update_profile))
        app.router.add_post(f"{prefix}/profiles", wrap(create_profile))
