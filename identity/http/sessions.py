"""``POST`` / ``DELETE /api/v2/barong/identity/sessions``: log in (with 2FA) and log out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from identity.errors import ValidationFailed
from identity.http.context import IDENTITY
from identity.http.entities import user_with_full_info
from identity.http.params import optional_string, read_params, required_strings

PREFIX = "identity.session"


async def create_session(request: web.Request) -> web.Response:
    ctx = request.app[IDENTITY]
    params = await read_params(request)
    email, password = required_strings(params, PREFIX, "email", "password")
    otp_code = optional_string(params, PREFIX, "otp_code")
    captcha = params.get("captcha_response")
    if captcha is not None and not isinstance(captcha, (str, dict)):
        raise ValidationFailed(f"{PREFIX}.invalid_captcha_format")
    result = await ctx.login.login(
        email, password, otp_code, ctx.client_info(request), request.cookies.get(ctx.cookie_name)
    )
    referral_uid = None
    if result.user.referral_id is not None:
        referrer = await ctx.users.get_by_id(result.user.referral_id)
        referral_uid = referrer.uid if referrer else None
    body = user_with_full_info(result.user, referral_uid=referral_uid, csrf_token=result.session.csrf_token)
    response = web.Response(status=200, body=orjson.dumps(body), content_type="application/json")
    response.set_cookie(
        ctx.cookie_name,
        result.session_id,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=ctx.cookie_secure,
        max_age=ctx.cookie_max_age,
    )
    return response


async def delete_session(request: web.Request) -> web.Response:
    ctx = request.app[IDENTITY]
    await ctx.login.logout(request.cookies.get(ctx.cookie_name), ctx.client_info(request))
    response = web.Response(status=200, body=b"{}", content_type="application/json")
    response.del_cookie(ctx.cookie_name, path="/")
    return response


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes; ``wrap`` is the application's error mapping (domain errors → HTTP)."""
    for prefix in ("/api/v2/barong/identity", "/api/v2/identity"):
        app.router.add_post(f"{prefix}/sessions", wrap(create_session))
        app.router.add_delete(f"{prefix}/sessions", wrap(delete_session))
