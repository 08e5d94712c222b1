"""``/resource/users/...``: the signed-in user's own account (barong-behavior.md §4.6, §9)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from identity.activities import ActivityFilter
from identity.errors import ValidationFailed
from identity.http.entities import activity_entity
from identity.http.pagination import paginated
from identity.http.params import optional_string, read_params, required_strings
from identity.http.resource.context import PREFIXES, RESOURCE, Handler, authenticated, current_session
from identity.http.responses import full_user, json_response
from identity.models import User
from identity.paging import Page, page_params
from identity.self_service import ACTIVITY_RESULTS, PREFIX, AccountSelfService, PasswordChange

ACCOUNT = web.AppKey("account", AccountSelfService)


async def get_me(request: web.Request, user: User) -> web.Response:
    return json_response(await full_user(request, user))


async def put_me(request: web.Request, user: User) -> web.Response:
    params = await read_params(request)
    updated = await request.app[ACCOUNT].update_data(user, params.get("data"))
    return json_response(await full_user(request, updated))


async def delete_me(request: web.Request, user: User) -> web.Response:
    params = await read_params(request)
    (password,) = required_strings(params, PREFIX, "password")
    otp_code = optional_string(params, PREFIX, "otp_code")
    client = request.app[RESOURCE].client_info(request)
    await request.app[ACCOUNT].delete(user, password, otp_code, client)
    return web.Response(status=204)


async def change_password(request: web.Request, user: User) -> web.Response:
    params = await read_params(request)
    old, new, confirmation = required_strings(
        params, PREFIX, "old_password", "new_password", "confirm_password"
    )
    await request.app[ACCOUNT].change_password(
        user,
        PasswordChange(old, new, confirmation),
        request.app[RESOURCE].client_info(request),
        keep_session=current_session(request),
    )
    return json_response({}, 201)


async def list_activity(request: web.Request, user: User) -> web.Response:
    wanted, page = activity_params(dict(request.query))
    found, total = await request.app[ACCOUNT].activity_page(
        user, request.match_info["topic"], wanted, offset=page.offset, limit=page.limit
    )
    return paginated(request, [activity_entity(entry) for entry in found], total, page)


def activity_params(params: dict[str, Any]) -> tuple[ActivityFilter, Page]:
    """``time_from``/``time_to`` (epoch seconds), ``result``, ``page``, ``limit``; every problem at once."""
    problems: list[str] = []
    moments: dict[str, datetime | None] = {}
    for name in ("time_from", "time_to"):
        raw = params.get(name)
        moments[name] = None
        if raw in (None, ""):
            continue
        text = str(raw).strip()
        if not text.lstrip("-").isdigit() or not text.isascii():
            problems.append(f"{PREFIX}.non_integer_{name}")
            continue
        try:
            moments[name] = datetime.fromtimestamp(int(text), UTC)
        except (OverflowError, OSError, ValueError):
            problems.append(f"{PREFIX}.invalid_{name}")
    result = params.get("result") or None
    if result is not None and result not in ACTIVITY_RESULTS:
        problems.append(f"{PREFIX}.invalid_result")
    page = page_params(params, problems)
    if problems:
        raise ValidationFailed(problems)
    return ActivityFilter(result=result, since=moments["time_from"], until=moments["time_to"]), page


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes under both resource prefixes; ``wrap`` is the application's error mapping."""
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/users/me", wrap(authenticated(get_me)))
        app.router.add_put(f"{prefix}/users/me", wrap(authenticated(put_me)))
        app.router.add_delete(f"{prefix}/users/me", wrap(authenticated(delete_me)))
        app.router.add_put(f"{prefix}/users/password", wrap(authenticated(change_password)))
        app.router.add_get(f"{prefix}/users/activity/{{topic}}", wrap(authenticated(list_activity)))
