"""``/resource/labels``: the signed-in user's public labels (barong-behavior.md §4.6–4.7)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from identity.errors import ValidationFailed
from identity.http.entities import label_entity
from identity.http.params import read_params, required_strings
from identity.http.resource.context import PREFIXES, Handler, authenticated
from identity.http.responses import json_response
from identity.labels import PublicLabels
from identity.models import User

LABELS = web.AppKey("public_labels", PublicLabels)
PREFIX = "resource.label"


async def list_labels(request: web.Request, user: User) -> web.Response:
    ordering = request.query.get("ordering", "asc")  # blank is invalid, as for the API keys' ordering
    if ordering not in ("asc", "desc"):
        raise ValidationFailed(f"{PREFIX}.invalid_ordering")
    found = await request.app[LABELS].of_user(user, descending=ordering == "desc")
    return json_response([label_entity(label) for label in found])


async def create_label(request: web.Request, user: User) -> web.Response:
    key, value = required_strings(await read_params(request), PREFIX, "key", "value")
    return json_response(label_entity(await request.app[LABELS].create(user, key, value)), 201)


async def get_label(request: web.Request, user: User) -> web.Response:
    return json_response(label_entity(await request.app[LABELS].get(user, request.match_info["key"])))


async def update_label(request: web.Request, user: User) -> web.Response:
    (value,) = required_strings(await read_params(request), PREFIX, "value")
    label = await request.app[LABELS].update(user, request.match_info["key"], value)
    return json_response(label_entity(label))


async def delete_label(request: web.Request, user: User) -> web.Response:
    await request.app[LABELS].delete(user, request.match_info["key"])
    return web.Response(status=204)


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes under both resource prefixes; ``wrap`` is the application's error mapping."""
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/labels", wrap(authenticated(list_labels)))
        app.router.add_post(f"{prefix}/labels", wrap(authenticated(create_label)))
        app.router.add_get(f"{prefix}/labels/{{key}}", wrap(authenticated(get_label)))
        app.router.add_patch(f"{prefix}/labels/{{key}}", wrap(authenticated(update_label)))
        app.router.add_delete(f"{prefix}/labels/{{key}}", wrap(authenticated(delete_label)))
