"""``/identity/users...``: sign-up, e-mail confirmation, password reset, whitelink access, Geetest."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from identity.accounts import SignUpForm
from identity.http.context import IDENTITY
from identity.http.params import captcha_response, optional_string, read_params, required_strings
from identity.http.responses import json_response, session_opened

PREFIX = "identity.user"
PREFIXES = ("/api/v2/barong/identity", "/api/v2/identity")


async def sign_up(request: web.Request) -> web.Response:
    ctx = request.app[IDENTITY]
    params = await read_params(request)
    email, password = required_strings(params, PREFIX, "email", "password")
    username = params.get("username")
    refid = optional_string(params, PREFIX, "refid")
    await ctx.captcha.verify("user_create", captcha_response(params, PREFIX))
    form = SignUpForm(email=email, password=password, username=username, refid=refid, data=params.get("data"))
    result = await ctx.accounts.sign_up(form, ctx.client_info(request), request.cookies.get(ctx.cookie_name))
    return await session_opened(request, result, 201)


async def generate_email_code(request: web.Request) -> web.Response:
    ctx = request.app[IDENTITY]
    params = await read_params(request)
    (email,) = required_strings(params, PREFIX, "email")
    await ctx.captcha.verify("email_confirmation", captcha_response(params, PREFIX))
    await ctx.accounts.request_confirmation(email, ctx.client_info(request))
    return json_response({}, 201)


async def confirm_email_code(request: web.Request) -> web.Response:
    ctx = request.app[IDENTITY]
    params = await read_params(request)
    (token,) = required_strings(params, PREFIX, "token")
    result = await ctx.accounts.confirm_email(
        token, ctx.client_info(request), request.cookies.get(ctx.cookie_name)
    )
    return await session_opened(request, result, 201)


async def generate_password_code(request: web.Request) -> web.Response:
    ctx = request.app[IDENTITY]
    params = await read_params(request)
    (email,) = required_strings(params, PREFIX, "email")
    await ctx.captcha.verify("password_reset", captcha_response(params, PREFIX))
    await ctx.accounts.request_reset(email, ctx.client_info(request))
    return json_response({}, 201)


async def confirm_password_code(request: web.Request) -> web.Response:
    ctx = request.app[IDENTITY]
    params = await read_params(request)
    token, password, confirmation = required_strings(
        params, PREFIX, "reset_password_token", "password", "confirm_password"
    )
    await ctx.accounts.confirm_reset(token, password, confirmation, ctx.client_info(request))
    return json_response({}, 201)


async def access(request: web.Request) -> web.Response:
    ctx = request.app[IDENTITY]
    params = await read_params(request)
    (token,) = required_strings(params, PREFIX, "whitelink_token")
    await ctx.accounts.whitelist_client(token, ctx.client_info(request))
    return json_response({}, 201)


async def register_geetest(request: web.Request) -> web.Response:
    return json_response(await request.app[IDENTITY].captcha.register_geetest())


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes; ``wrap`` is the application's error mapping (domain errors → HTTP)."""
    for prefix in PREFIXES:
        app.router.add_post(f"{prefix}/users", wrap(sign_up))
        app.router.add_post(f"{prefix}/users/email/generate_code", wrap(generate_email_code))
        app.router.add_post(f"{prefix}/users/email/confirm_code", wrap(confirm_email_code))
        app.router.add_post(f"{prefix}/users/password/generate_code", wrap(generate_password_code))
        app.router.add_post(f"{prefix}/users/password/confirm_code", wrap(confirm_password_code))
        app.router.add_post(f"{prefix}/users/access", wrap(access))
        app.router.add_get(f"{prefix}/users/register_geetest", wrap(register_geetest))
