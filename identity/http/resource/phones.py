"""Resource API: the user's phones (``GET/POST /phones``, ``POST /phones/send_code``, ``POST /phones/verify``).

Keys and statuses as Barong 2.6: 400 ``resource.phone.invalid_num`` / ``number_exist`` / ``exists``, 404
``doesnt_exist`` / ``verification_invalid``, 422 ``resource.phone.{missing,empty}_<param>`` and
``invalid_channel``; 201 on every POST.  Ours on top: 422 ``resource.phone.exceeded_resend_limit`` for a
code asked again within the resend interval, 429 ``resource.phone.too_many_requests`` (with ``Retry-After``)
beyond the codes a number or a client IP may ask for within the window, 503 ``resource.phone.sms_failed``
when the SMS cannot be sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from identity.errors import ValidationFailed
from identity.http.entities import phone_entity
from identity.http.params import read_params, required_strings
from identity.http.resource.context import PREFIXES, RESOURCE, Handler, authenticated
from identity.http.responses import full_user, json_response
from identity.models import User
from identity.phones import CHANNELS, PhoneService

PHONES = web.AppKey("phones", PhoneService)
PREFIX = "resource.phone"


def _channel(params: dict[str, Any]) -> str:
    """``channel``: ``sms`` (the default); Barong's ``call`` needs Twilio Verify, which we do not use."""
    channel = params.get("channel")
    if channel is None:
        return "sms"
    if not isinstance(channel, str) or channel not in CHANNELS:
        raise ValidationFailed(f"{PREFIX}.invalid_channel")
    return channel


async def _number_and_channel(request: web.Request) -> tuple[str, str]:
    params = await read_params(request)
    problems: list[str] = []
    try:
        required_strings(params, PREFIX, "phone_number")
    except ValidationFailed as exc:
        problems += exc.keys
    try:
        channel = _channel(params)
    except ValidationFailed as exc:
        problems += exc.keys
    if problems:
        raise ValidationFailed(problems)
    return params["phone_number"], channel


async def list_phones(request: web.Request, user: User) -> web.StreamResponse:
    masking = request.app[RESOURCE].masking
    return json_response([phone_entity(phone, masking) for phone in await request.app[PHONES].list(user)])


async def add_phone(request: web.Request, user: User) -> web.StreamResponse:
    number, channel = await _number_and_channel(request)
    await request.app[PHONES].add(user, number, request.app[RESOURCE].client_info(request))
    return json_response({"message": f"Code was sent successfully via {channel}"}, 201)


async def send_code(request: web.Request, user: User) -> web.StreamResponse:
    number, channel = await _number_and_channel(request)
    await request.app[PHONES].send_code(user, number, request.app[RESOURCE].client_info(request))
    return json_response({"message": f"Code was sent successfully via {channel}"}, 201)


async def verify(request: web.Request, user: User) -> web.StreamResponse:
    """Barong 2.6 answers with the user (``UserWithFullInfo``), now at its new level."""
    params = await read_params(request)
    code = params.get("verification_code")
    if isinstance(code, int) and not isinstance(code, bool):
        params["verification_code"] = f"{code:06d}"  # a JSON number; Grape coerces it to the String parameter
    number, code = required_strings(params, PREFIX, "phone_number", "verification_code")
    service = request.app[PHONES]
    after = await service.verify(user, number, code.strip())
    return json_response(await full_user(request, after), 201)


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes under both resource prefixes; ``wrap`` is the application's error mapping."""
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/phones", wrap(authenticated(list_phones)))
        app.router.add_post(f"{prefix}/phones", wrap(authenticated(add_phone)))
        app.router.add_post(f"{prefix}/phones/send_code", wrap(authenticated(send_code)))
        app.router.add_post(f"{prefix}/phones/verify", wrap(authenticated(verify)))
