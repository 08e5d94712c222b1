"""Resource API: the signed-in user's API keys (barong-behavior.md §5.2).

``GET /api_keys`` lists them (no TOTP needed); ``POST``, ``PATCH /{kid}`` and ``DELETE /{kid}`` need the
user's 2FA and a TOTP code.  The secret is in the answer to ``POST`` only.  ``api_key_entity`` and
``key_params`` also serve the service accounts' keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from identity.api_key_service import ApiKeyService
from identity.errors import ValidationFailed
from identity.http.entities import iso
from identity.http.pagination import paginated
from identity.http.params import read_params
from identity.http.resource.context import PREFIXES, Handler, authenticated
from identity.http.responses import json_response
from identity.models import USER_HOLDER, ApiKey, User

API_KEYS = web.AppKey("api_keys", ApiKeyService)
PREFIX = "resource.api_key"


def api_key_entity(key: ApiKey, with_secret: bool = False) -> dict[str, Any]:
    """Barong's ``APIKey`` entity; the secret only when the key was just created."""
    entity: dict[str, Any] = {
        "kid": key.kid,
        "algorithm": key.algorithm,
        "scope": list(key.scope),
        "state": key.state,
        "created_at": iso(key.created_at),
        "updated_at": iso(key.updated_at),
    }
    if with_secret:
        entity["secret"] = key.secret
    return entity


def _text(value: Any) -> Any:
    # Grape coerces numbers to String parameters: clients send TOTP codes as JSON numbers.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def key_params(
    params: dict[str, Any], prefix: str, *, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()
) -> dict[str, str | None]:
    """The string parameters of a key call, every problem reported at once (Grape's validation).

    A required one missing gives ``<prefix>.missing_<name>``, blank ``<prefix>.empty_<name>``; an optional one
    may be absent but not blank.  ``totp_code`` missing or blank is ``<prefix>.missing_totp`` (Barong's message).
    Any other type is ``<prefix>.invalid_<name>``.
    """
    problems: list[str] = []
    values: dict[str, str | None] = {}
    for name in (*required, *optional):
        value = _text(params.get(name))
        values[name] = None
        if value is None:
            if name in required:
                problems.append(f"{prefix}.missing_totp" if name == "totp_code" else f"{prefix}.missing_{name}")
        elif not isinstance(value, str):
            problems.append(f"{prefix}.invalid_{name}")
        elif not value.strip():
            problems.append(f"{prefix}.missing_totp" if name == "totp_code" else f"{prefix}.empty_{name}")
        else:
            values[name] = value
    if problems:
        raise ValidationFailed(problems)
    return values


async def list_keys(request: web.Request, user: User) -> web.StreamResponse:
    params = await read_params(request)
    keys, total, page = await request.app[API_KEYS].list(USER_HOLDER, user.id, params, PREFIX)
    return paginated(request, [api_key_entity(key) for key in keys], total, page)


async def create_key(request: web.Request, user: User) -> web.StreamResponse:
    values = key_params(await read_params(request), PREFIX, required=("algorithm", "totp_code"), optional=("scope",))
    key = await request.app[API_KEYS].create(
        user,
        USER_HOLDER,
        user.id,
        user.state,
        algorithm=values["algorithm"] or "",
        scope=values["scope"],
        totp_code=values["totp_code"],
        prefix=PREFIX,
    )
    return json_response(api_key_entity(key, with_secret=True), 201)


async def update_key(request: web.Request, user: User) -> web.StreamResponse:
    values = key_params(await read_params(request), PREFIX, required=("totp_code",), optional=("scope", "state"))
    key = await request.app[API_KEYS].update(
        user,
        USER_HOLDER,
        user.id,
        user.state,
        request.match_info["kid"],
        scope=values["scope"],
        state=values["state"],
        totp_code=values["totp_code"],
        prefix=PREFIX,
    )
    return json_response(api_key_entity(key))


async def delete_key(request: web.Request, user: User) -> web.StreamResponse:
    values = key_params(await read_params(request), PREFIX, required=("totp_code",))
    await request.app[API_KEYS].delete(
        user, USER_HOLDER, user.id, request.match_info["kid"], totp_code=values["totp_code"], prefix=PREFIX
    )
    return web.Response(status=204)


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes under both resource prefixes; ``wrap`` is the application's error mapping."""
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/api_keys", wrap(authenticated(list_keys)))
        app.router.add_post(f"{prefix}/api_keys", wrap(authenticated(create_key)))
        app.router.add_patch(f"{prefix}/api_keys/{{kid}}", wrap(authenticated(update_key)))
        app.router.add_delete(f"{prefix}/api_keys/{{kid}}", wrap(authenticated(delete_key)))
