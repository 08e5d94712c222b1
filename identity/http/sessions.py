"""``POST`` / ``DELETE /identity/sessions`` (log in with 2FA, log out) and ``POST /identity/sessions/auth0``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from identity.http.context import IDENTITY
from identity.http.params import captcha_response, optional_string, read_params, required_strings
from identity.http.responses import json_response, session_opened

PREFIX = "identity.session"
PREFIXES = ("/api/v2/barong/identity", "/api/v2/identity")


async def create_session(request: web.Request) -> web.Response:
    ctx = request.app[IDENTITY]
    params = await read_params(request)
    email, password = required_strings(params, PREFIX, "email", "password")
    otp_code = optional_string(params, PREFIX, "otp_code")
    await ctx.captcha.verify("session_create", captcha_response(params, PREFIX))
    result = await ctx.login.login(
        email, password, otp_code, ctx.client_info(request), request.cookies.get(ctx.cookie_name)
    )
    return await session_opened(request, result, 200)


async def create_auth0_session(request: web.Request) -> web.Response:
    ctx = request.app[IDENTITY]
    params = await read_params(request)
    (id_token,) = required_strings(params, PREFIX, "id_token")
    identity = await ctx.auth0.verify(id_token)
    result = await ctx.login.login_auth0(
        identity.email,
        identity.email_verified,
        ctx.client_info(request),
        request.cookies.get(ctx.cookie_name),
    )
    return await session_opened(request, result, 201)


async def delete_session(request: web.Request) -> web.Response:
    ctx = request.app[IDENTITY]
    await ctx.login.logout(request.cookies.get(ctx.cookie_name), ctx.client_info(request))
    response = json_response({})
    # The expired cookie carries the session cookie's flags: it must replace it, never weaken it.
    response.del_cookie(ctx.cookie_name, path="/", secure=ctx.cookie_secure, httponly=True, samesite="Lax")
    return response


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes; ``wrap`` is the application's error mapping (domain errors → HTTP)."""
    for prefix in PREFIXES:
        app.router.add_post(f"{prefix}/sessions", wrap(create_session))
        app.router.add_delete(f"{prefix}/sessions", wrap(delete_session))
        app.router.add_post(f"{prefix}/sessions/auth0", wrap(create_auth0_session))
