"""``/resource/data_storage``: titled pieces of additional user data (seed 2.6)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from identity.data_storage import validate_data_storage
from identity.http.entities import data_storage_entity
from identity.http.params import read_params, required_strings
from identity.http.resource.context import PREFIXES, Handler, authenticated
from identity.http.responses import ACCOUNT_RECORDS, json_response
from identity.models import User

PREFIX = "resource.data_storage"


async def create_data_storage(request: web.Request, user: User) -> web.Response:
    params = await read_params(request)
    data = params.get("data")
    # An object in a JSON body is as good as its JSON text.
    title, _ = required_strings(
        {**params, "data": "{}" if isinstance(data, dict) else data}, PREFIX, "title", "data"
    )
    title, text = validate_data_storage(title, data)
    storage = await request.app[ACCOUNT_RECORDS].data_storages.create(user.id, title, text)
    return json_response(data_storage_entity(storage), 201)


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes under both resource prefixes; ``wrap`` is the application's error mapping."""
    for prefix in PREFIXES:
        app.router.add_post(f"{prefix}/data_storage", wrap(authenticated(create_data_storage)))
