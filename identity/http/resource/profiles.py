"""``/resource/profiles``: the signed-in user's KYC profile (seed 2.6; states drafted, submitted,
verified, rejected)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web

from identity.errors import AlreadyExists, RecordNotFound
from identity.http.entities import profile_entity
from identity.http.params import read_params
from identity.http.resource.context import PREFIXES, RESOURCE, Handler, authenticated
from identity.http.responses import ACCOUNT_RECORDS, json_response
from identity.models import User
from identity.profiles import PREFIX, ProfileChange, validate_profile


async def my_profiles(request: web.Request, user: User) -> web.Response:
    records = request.app[ACCOUNT_RECORDS]
    found = await records.profiles.for_user(user.id)
    if not found:
        raise RecordNotFound(f"{PREFIX}.not_exist")
    return json_response([profile_entity(profile, masked=records.masking) for profile in found])


async def create_profile(request: web.Request, user: User) -> web.Response:
    records = request.app[ACCOUNT_RECORDS]
    profile = await records.profiles.create(user.id, await _change(request))
    if profile is None:
        raise AlreadyExists(f"{PREFIX}.exist")
    return json_response(profile_entity(profile, masked=records.masking), 201)


async def update_profile(request: web.Request, user: User) -> web.Response:
    records = request.app[ACCOUNT_RECORDS]
    profile = await records.profiles.update_editable(user.id, await _change(request))
    if profile is None:
        raise RecordNotFound(f"{PREFIX}.doesnt_exist_or_not_editable")
    return json_response(profile_entity(profile, masked=records.masking))


async def _change(request: web.Request) -> ProfileChange:
    today = datetime.fromtimestamp(request.app[RESOURCE].clock(), UTC).date()
    return validate_profile(await read_params(request), today)


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes under both resource prefixes; ``wrap`` is the application's error mapping."""
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/profiles/me", wrap(authenticated(my_profiles)))
        app.router.add_post(f"{prefix}/profiles", wrap(authenticated(create_profile)))
        app.router.add_put(f"{prefix}/profiles", wrap(authenticated(update_profile)))
