"""The token API's endpoints (Financelime seed 000, with the seed 001 paths as aliases).

Every handler checks the ``request-id`` first (the seed requires it everywhere), then its body; the domain
errors it lets through become ``{"code": N, "message": "..."}`` in ``authz/http/errors.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from identity.access_tokens import bearer_token
from identity.activity_log import ClientInfo
from identity.errors import (
    AccessTokenRejected,
    InvalidOtp,
    MalformedRequest,
    RecordNotFound,
    ValidationFailed,
)
from identity.http.financelime.context import FINANCELIME
from identity.http.financelime.pages import page
from identity.http.financelime.requests import email, integer, json_body, obj, request_id, text
from identity.invite_codes import CODE_FORMAT
from identity.models import User
from identity.notifications import user_language
from identity.signups import LANGUAGES, SignUp
from identity.token_sessions import SESSION_ID, Device, TokenGrant

JSON = "application/json"
MAX_CLIENT_ID = 32  # Financelime's column width
MAX_SCREEN = 32_767


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    response = web.Response(status=status, body=orjson.dumps(body), content_type=JSON, headers=headers)
    response.charset = "utf-8"
    return response


def _no_content(rid: str) -> web.Response:
    return web.Response(status=204, headers={"request-id": rid})


def _grant(grant: TokenGrant, rid: str) -> web.Response:
    body = {
        "accessToken": grant.access_token,
        "refreshToken": grant.refresh_token,
        "sessionID": grant.session_id,
    }
    return _json(body, headers={"request-id": rid, "Cache-Control": "no-store"})


async def sign_up(request: web.Request) -> web.Response:
    """``POST /v1/user``: hold a sign-up and mail its confirmation link (204)."""
    ctx = request.app[FINANCELIME]
    rid = request_id(request)
    body = await json_body(request)
    address = email(body)
    code = text(body, "inviteCode").strip()
    if (code or ctx.signups.invite_required) and not CODE_FORMAT.fullmatch(code):
        raise MalformedRequest("inviteCode.invalid")
    language = text(body, "language").strip().lower()
    if language not in LANGUAGES:
        raise MalformedRequest("language.invalid")
    await ctx.signups.sign_up(SignUp(address, code, language), ctx.client_info(request))
    return _no_content(rid)


async def confirm_sign_up(request: web.Request) -> web.Response:
    """``GET /u/{key}``: create the account and mail its password; a page says how it went."""
    ctx = request.app[FINANCELIME]
    return await _link_page(request, ctx.signups.confirm, "signup_confirmed")


async def _link_page(
    request: web.Request,
    confirm: Callable[[str, ClientInfo], Awaitable[User]],
    success: str,
) -> web.Response:
    """The page a mailed link opens: ``confirm`` the key, and say how it went (400 without a request id)."""
    try:
        request_id(request)
    except MalformedRequest:
        return page(request, 400, "bad_request")
    try:
        user = await confirm(request.match_info["key"], request.app[FINANCELIME].client_info(request))
    except RecordNotFound:
        return page(request, 404, "not_found")
    return page(request, 200, success, user_language(user))


async def request_password_reset(request: web.Request) -> web.Response:
    """``PUT /v1/user``: mail a link that, once opened, mails a new password (204)."""
    ctx = request.app[FINANCELIME]
    rid = request_id(request)
    address = email(await json_body(request))
    await ctx.signups.request_reset(address, ctx.client_info(request))
    return _no_content(rid)


async def confirm_password_reset(request: web.Request) -> web.Response:
    """``GET /p/{key}``: mail a new password and sign every session out; a page says how it went."""
    ctx = request.app[FINANCELIME]
    return await _link_page(request, ctx.signups.confirm_reset, "reset_confirmed")


async def create_tokens(request: web.Request) -> web.Response:
    """``POST /v1/oauth``: log in for an access token, a refresh token and the new session's id."""
    ctx = request.app[FINANCELIME]
    rid = request_id(request)
    body = await json_body(request)
    address, password = text(body, "email").strip(), text(body, "password")
    if len(address) < 3 or len(password) < 3:
        raise MalformedRequest("credentials.invalid")
    client_id = text(body, "clientID", max_length=MAX_CLIENT_ID)
    otp_code = text(body, "otpCode", max_length=16).strip() or None  # ours: the account's 2FA code
    device = obj(body, "device")
    device_info = Device(
        platform=text(device, "platform"),
        language=text(device, "language"),
        timezone=text(device, "timezone"),
        height=integer(device, "height", low=0, high=MAX_SCREEN),
        width=integer(device, "width", low=0, high=MAX_SCREEN),
    )
    try:
        grant = await ctx.tokens.login(
            address, password, otp_code, ctx.client_info(request), client_id, device_info
        )
    except ValidationFailed as exc:
        if "totp.error" in exc.keys:  # a right code used twice
            raise InvalidOtp() from None
        raise
    return _grant(grant, rid)


async def refresh_tokens(request: web.Request) -> web.Response:
    """``PUT /v1/oauth``: trade the refresh token for new tokens of the same session."""
    ctx = request.app[FINANCELIME]
    rid = request_id(request)
    token = text(await json_body(request), "refreshToken", max_length=1024).strip()
    if not token:
        raise MalformedRequest("refreshToken.missing")
    return _grant(await ctx.tokens.refresh(token, ctx.client_info(request)), rid)


async def _caller(request: web.Request) -> tuple[str, str | None]:
    """The uid and session id of the bearer: an access token, or — behind a gateway, which swaps it for its
    own JWT — the upstream JWT the decision endpoint minted (its ``sid`` claim, whose session must still be
    live).  Either way the permission table must let the user's role make this request."""
    ctx = request.app[FINANCELIME]
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise AccessTokenRejected()
    try:
        holder = await ctx.tokens.holder(token)
    except AccessTokenRejected:
        holder = None
    if holder is None:
        caller = await ctx.callers.caller(f"Bearer {token}", request.method, request.path)
        return caller.user.uid, caller.session
    ctx.callers.check_permitted(holder.user.role, request.method, request.path)
    return holder.user.uid, holder.session.hash


async def list_sessions(request: web.Request) -> web.Response:
    """``GET /v1/sessions``: every active session of the bearer's account, browser sessions included."""
    ctx = request.app[FINANCELIME]
    rid = request_id(request)
    uid, _ = await _caller(request)
    sessions = await ctx.tokens.list(uid)
    body = [
        {"sessionID": s.session_id, "platform": s.platform, "updatedAt": _rfc3339(s.updated_at)}
        for s in sessions
    ]
    return _json(body, headers={"request-id": rid, "Cache-Control": "no-store"})


async def revoke_session(request: web.Request) -> web.Response:
    """``DELETE /v1/session``: end one of the bearer's sessions (its own when ``sessionID`` is empty); 204
    whether or not there was such a session.  ``sessionID`` is required (as in both seeds): a body without
    it is refused rather than read as "my own session", which would log the caller out by accident."""
    ctx = request.app[FINANCELIME]
    rid = request_id(request)
    uid, own = await _caller(request)
    session = text(await json_body(request), "sessionID", required=True).strip() or own
    if session is None or not SESSION_ID.fullmatch(session):
        raise MalformedRequest("sessionID.invalid")
    await ctx.tokens.revoke(uid, session)
    return _no_content(rid)


async def version(request: web.Request) -> web.Response:
    """``GET /v1/version``: ``{number, build}``."""
    ctx = request.app[FINANCELIME]
    rid = request_id(request)
    return _json({"number": ctx.version, "build": ctx.build}, headers={"request-id": rid})


def _rfc3339(epoch: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
