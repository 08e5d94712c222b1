"""Resource API: the signed-in user's 2FA (barong-behavior.md §6): ``POST /otp/generate_qrcode``, ``/enable``,
``/disable`` and ``/verify``.

Statuses as Barong's (Grape's POST default 201, ``disable`` 200); the bodies are JSON objects (decisions.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from identity.http.params import read_params, required_strings
from identity.http.resource.context import PREFIXES, RESOURCE, Handler, authenticated, current_session
from identity.http.responses import json_response
from identity.models import User
from identity.otp_service import OtpService

OTP = web.AppKey("otp", OtpService)


async def _code(request: web.Request) -> str:
    """The ``code`` parameter: ``422 resource.otp.missing_code`` / ``empty_code`` (checked before anything)."""
    params: dict[str, Any] = await read_params(request)
    code = params.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        params["code"] = f"{code:06d}"  # a JSON number; Grape coerces it to the String parameter
    (code,) = required_strings(params, "resource.otp", "code")
    return code.strip()


async def generate_qrcode(request: web.Request, user: User) -> web.StreamResponse:
    ctx = request.app[RESOURCE]
    enrolment = await request.app[OTP].generate(user, ctx.client_info(request))
    return json_response({"data": {"barcode": enrolment.barcode, "url": enrolment.url}}, 201)


async def enable(request: web.Request, user: User) -> web.StreamResponse:
    code = await _code(request)
    ctx = request.app[RESOURCE]
    await request.app[OTP].enable(user, code, ctx.client_info(request), keep_session=current_session(request))
    return json_response({}, 201)


async def disable(request: web.Request, user: User) -> web.StreamResponse:
    code = await _code(request)
    await request.app[OTP].disable(user, code, request.app[RESOURCE].client_info(request))
    return json_response({})


async def verify(request: web.Request, user: User) -> web.StreamResponse:
    code = await _code(request)
    await request.app[OTP].verify(user, code, request.app[RESOURCE].client_info(request))
    return json_response({}, 201)


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes under both resource prefixes; ``wrap`` is the application's error mapping."""
    for prefix in PREFIXES:
        app.router.add_post(f"{prefix}/otp/generate_qrcode", wrap(authenticated(generate_qrcode)))
        app.router.add_post(f"{prefix}/otp/enable", wrap(authenticated(enable)))
        app.router.add_post(f"{prefix}/otp/disable", wrap(authenticated(disable)))
        app.router.add_post(f"{prefix}/otp/verify", wrap(authenticated(verify)))
