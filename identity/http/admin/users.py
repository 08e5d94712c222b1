"""Admin API: users, their labels, data storages and API keys (barong-behavior.md §8.3, seed 2.4).

| route | ability | answer |
|---|---|---|
| ``GET /users`` | read User | ``User`` (``UserWithProfile`` when ``extended``), paginated |
| ``GET /users/{uid}`` | read User | ``UserWithKYC`` |
| ``POST /users/update`` / ``PUT /users`` | update User | ``User``, 201 / 200 |
| ``POST /users/role`` | update User | ``User``, 201 |
| ``GET /users/documents/pending`` | read User | ``User`` (``UserWithKYC`` when ``extended``), paginated |
| ``GET /users/labels/list`` | read User | ``{'["key", "value"]': users}`` of the private labels |
| ``GET /users/labels`` | read User | ``User`` holding ``key: value``, paginated |
| ``POST /users/labels`` | create Label | ``AdminLabelView``, 201 |
| ``POST /users/labels/update`` / ``PUT /users/labels`` | update Label | ``AdminLabelView``, 201 / 200 |
| ``DELETE /users/labels`` | destroy Label | 204 |
| ``DELETE /users/data_storage`` | destroy User | 204 |
| ``GET /api_keys?uid=`` | read APIKey | ``APIKey`` without secret, paginated |
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from identity.admin.actor import Actor
from identity.admin.users import UserAdmin
from identity.http.admin.context import PREFIXES, admin
from identity.http.admin.user_entities import (
    admin_label_entity,
    admin_user_entity,
    label_counts_entity,
    user_with_kyc_entity,
    user_with_profile_entity,
)
from identity.http.pagination import paginated
from identity.http.params import read_params
from identity.http.resource.api_keys import api_key_entity
from identity.http.resource.context import Handler
from identity.http.responses import json_response

USERS_ADMIN = web.AppKey("users_admin", UserAdmin)


@admin("read", "User")
async def list_users(request: web.Request, _actor: Actor) -> web.StreamResponse:
    found = await request.app[USERS_ADMIN].list(dict(request.query))
    entity = user_with_profile_entity if found.extended else admin_user_entity
    return paginated(request, [entity(view) for view in found.views], found.total, found.page)


@admin("read", "User")
async def get_user(request: web.Request, _actor: Actor) -> web.StreamResponse:
    view = await request.app[USERS_ADMIN].get(request.match_info["uid"])
    return json_response(user_with_kyc_entity(view))


@admin("update", "User")
async def post_update(request: web.Request, actor: Actor) -> web.StreamResponse:
    user = await request.app[USERS_ADMIN].update(actor, await read_params(request))
    return json_response(admin_user_entity(user), 201)


@admin("update", "User")
async def put_user(request: web.Request, actor: Actor) -> web.StreamResponse:
    user = await request.app[USERS_ADMIN].update(actor, await read_params(request), with_email=True)
    return json_response(admin_user_entity(user))


@admin("update", "User")
async def post_role(request: web.Request, actor: Actor) -> web.StreamResponse:
    user = await request.app[USERS_ADMIN].change_role(actor, await read_params(request))
    return json_response(admin_user_entity(user), 201)


@admin("read", "User")
async def pending_documents(request: web.Request, _actor: Actor) -> web.StreamResponse:
    found = await request.app[USERS_ADMIN].pending_documents(dict(request.query))
    entity = user_with_kyc_entity if found.extended else admin_user_entity
    return paginated(request, [entity(view) for view in found.views], found.total, found.page)


@admin("read", "User")
async def label_counts(request: web.Request, _actor: Actor) -> web.StreamResponse:
    return json_response(label_counts_entity(await request.app[USERS_ADMIN].labels.private_counts()))


@admin("read", "User")
async def users_with_label(request: web.Request, _actor: Actor) -> web.StreamResponse:
    found, total, page = await request.app[USERS_ADMIN].labels.users_with(dict(request.query))
    return paginated(request, [admin_user_entity(view) for view in found], total, page)


@admin("create", "Label")
async def create_label(request: web.Request, actor: Actor) -> web.StreamResponse:
    label = await request.app[USERS_ADMIN].labels.create(actor, await read_params(request))
    return json_response(admin_label_entity(label), 201)


@admin("update", "Label")
async def post_label_update(request: web.Request, actor: Actor) -> web.StreamResponse:
    label = await request.app[USERS_ADMIN].labels.update(
        actor, await read_params(request), replace_param=True
    )
    return json_response(admin_label_entity(label), 201)


@admin("update", "Label")
async def put_label(request: web.Request, actor: Actor) -> web.StreamResponse:
    label = await request.app[USERS_ADMIN].labels.update(
        actor, await read_params(request), replace_param=False
    )
    return json_response(admin_label_entity(label))


@admin("destroy", "Label")
async def delete_label(request: web.Request, actor: Actor) -> web.StreamResponse:
    await request.app[USERS_ADMIN].labels.delete(actor, await read_params(request))
    return web.Response(status=204)


@admin("destroy", "User")
async def delete_data_storage(request: web.Request, actor: Actor) -> web.StreamResponse:
    await request.app[USERS_ADMIN].delete_data_storage(actor, await read_params(request))
    return web.Response(status=204)


@admin("read", "APIKey")
async def list_api_keys(request: web.Request, _actor: Actor) -> web.StreamResponse:
    keys, total, page = await request.app[USERS_ADMIN].api_keys(dict(request.query))
    return paginated(request, [api_key_entity(key) for key in keys], total, page)


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes under both admin prefixes; ``wrap`` is the application's error mapping.

    The fixed paths under ``/users/`` come before ``/users/{uid}``, which would otherwise take them."""
    for prefix in PREFIXES:
        users = f"{prefix}/users"
        app.router.add_get(users, wrap(list_users))
        app.router.add_put(users, wrap(put_user))
        app.router.add_post(f"{users}/update", wrap(post_update))
        app.router.add_post(f"{users}/role", wrap(post_role))
        app.router.add_get(f"{users}/documents/pending", wrap(pending_documents))
        app.router.add_get(f"{users}/labels/list", wrap(label_counts))
        app.router.add_get(f"{users}/labels", wrap(users_with_label))
        app.router.add_post(f"{users}/labels", wrap(create_label))
        app.router.add_put(f"{users}/labels", wrap(put_label))
        app.router.add_delete(f"{users}/labels", wrap(delete_label))
        app.router.add_post(f"{users}/labels/update", wrap(post_label_update))
        app.router.add_delete(f"{users}/data_storage", wrap(delete_data_storage))
        app.router.add_get(f"{users}/{{uid}}", wrap(get_user))
        app.router.add_get(f"{prefix}/api_keys", wrap(list_api_keys))
