"""Resource API: the signed-in user's service accounts and their API keys (barong-behavior.md §5.3).

``GET /service_accounts`` lists the caller's accounts.  ``/service_accounts/api_keys`` (``GET``, ``POST``,
``PUT /{kid}``, ``DELETE /{kid}``) take ``service_account_uid``: an account that is not the caller's is
``404 resource.service_account.doesnt_exist`` before any TOTP check; writes need the OWNER's TOTP code
(``resource.service_accounts.{2fa_disabled,missing_totp,invalid_totp}``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from identity.http.entities import iso, user_entity
from identity.http.pagination import paginated
from identity.http.params import read_params
from identity.http.resource.api_keys import api_key_entity, key_params
from identity.http.resource.context import PREFIXES, RESOURCE, Handler, authenticated
from identity.http.responses import json_response
from identity.models import ServiceAccount, User
from identity.service_accounts import KEYS_PREFIX, OwnedServiceAccounts

SERVICE_ACCOUNTS = web.AppKey("service_accounts", OwnedServiceAccounts)
UID = "service_account_uid"


def service_account_entity(account: ServiceAccount, owner: dict[str, Any] | None) -> dict[str, Any]:
    """Barong's ``API_V2_Entities_ServiceAccounts``; ``owner`` is the owner's user entity."""
    return {
        "email": account.email,
        "uid": account.uid,
        "role": account.role,
        "level": account.level,
        "state": account.state,
        "user": owner,
        "created_at": iso(account.created_at),
        "updated_at": iso(account.updated_at),
    }


async def list_accounts(request: web.Request, user: User) -> web.StreamResponse:
    referral_uid = None
    if user.referral_id is not None:
        referrer = await request.app[RESOURCE].users.get_by_id(user.referral_id)
        referral_uid = referrer.uid if referrer else None
    owner = user_entity(user, referral_uid)
    accounts = await request.app[SERVICE_ACCOUNTS].list(user)
    return json_response([service_account_entity(account, owner) for account in accounts])


async def list_keys(request: web.Request, user: User) -> web.StreamResponse:
    params = await read_params(request)
    values = key_params(params, KEYS_PREFIX, required=(UID,))
    keys, total, page = await request.app[SERVICE_ACCOUNTS].list_keys(user, values[UID] or "", params)
    return paginated(request, [api_key_entity(key) for key in keys], total, page)


async def create_key(request: web.Request, user: User) -> web.StreamResponse:
    values = key_params(
        await read_params(request), KEYS_PREFIX, required=(UID, "algorithm", "totp_code"), optional=("scope",)
    )
    key = await request.app[SERVICE_ACCOUNTS].create_key(
        user,
        values[UID] or "",
        algorithm=values["algorithm"] or "",
        scope=values["scope"],
        totp_code=values["totp_code"],
    )
    return json_response(api_key_entity(key, with_secret=True), 201)


async def update_key(request: web.Request, user: User) -> web.StreamResponse:
    values = key_params(
        await read_params(request), KEYS_PREFIX, required=(UID, "totp_code"), optional=("scope", "state")
    )
    key = await request.app[SERVICE_ACCOUNTS].update_key(
        user,
        values[UID] or "",
        request.match_info["kid"],
        scope=values["scope"],
        state=values["state"],
        totp_code=values["totp_code"],
    )
    return json_response(api_key_entity(key))


async def delete_key(request: web.Request, user: User) -> web.StreamResponse:
    values = key_params(await read_params(request), KEYS_PREFIX, required=(UID, "totp_code"))
    await request.app[SERVICE_ACCOUNTS].delete_key(
        user, values[UID] or "", request.match_info["kid"], totp_code=values["totp_code"]
    )
    return web.Response(status=204)


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes under both resource prefixes; ``wrap`` is the application's error mapping."""
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/service_accounts", wrap(authenticated(list_accounts)))
        app.router.add_get(f"{prefix}/service_accounts/api_keys", wrap(authenticated(list_keys)))
        app.router.add_post(f"{prefix}/service_accounts/api_keys", wrap(authenticated(create_key)))
        app.router.add_put(f"{prefix}/service_accounts/api_keys/{{kid}}", wrap(authenticated(update_key)))
        app.router.add_delete(f"{prefix}/service_accounts/api_keys/{{kid}}", wrap(authenticated(delete_key)))
