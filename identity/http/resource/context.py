"""What every resource handler needs: the caller check, the caller, and the shared repositories.

Each area (OTP, API keys, phones...) keeps its own service under an app key of its own module; this
context holds what every handler needs: the caller check (:class:`identity.callers.UpstreamCallers`), the
users, the client's address and agent, the service clock, the session cookie's name and whether personal
data is masked.  ``authenticated`` turns ``handler(request, user)`` into an aiohttp handler that first
checks the request's upstream JWT, its credential and the permission table, and loads its user.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from identity.activity_log import ClientInfo
from identity.callers import Caller, UpstreamCallers
from identity.models import User
from identity.sessions import session_hash
from identity.users import SqlUserRepository

PREFIXES = ("/api/v2/barong/resource", "/api/v2/resource")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UserHandler = Callable[[web.Request, User], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ResourceContext:
    callers: UpstreamCallers
    users: SqlUserRepository
    client_info: Callable[[web.Request], ClientInfo]
    clock: Callable[[], float]
    cookie_name: str = "_barong_session"
    masking: bool = True  # API_DATA_MASKING: mask last names, birth dates, phone and document numbers


RESOURCE = web.AppKey("resource", ResourceContext)
CALLER = web.RequestKey("resource_caller", Caller)


async def current_user(request: web.Request) -> User:
    """The user of the request's upstream JWT, once the request is checked as the gateway checks it.

    401 ``jwt.decode_and_verify`` without a valid token, or when its user may no longer log in or the
    session or API key it was minted for has ended; 401 ``authz.invalid_permission`` when the permission
    table refuses the user's role this request (method and path).  The user is read from SQL, not from the
    token: a role or state changed since the token was minted counts.
    """
    ctx = request.app[RESOURCE]
    authorization = request.headers.get("Authorization")
    caller = await ctx.callers.caller(authorization, request.method, request.path)
    request[CALLER] = caller
    return caller.user


def authenticated(handler: UserHandler) -> Handler:
    """``handler(request, user)`` behind the caller check (:func:`current_user`)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return await handler(request, await current_user(request))

    handle.__name__ = getattr(handler, "__name__", "handle")
    handle.__doc__ = handler.__doc__
    return handle


def current_session(request: web.Request) -> str | None:
    """Hash of the session the request's JWT was minted for (its ``sid``), else of the session whose cookie
    the gateway forwarded with the request (None for API-key callers).

    "Revoke the user's other sessions" keeps this one.
    """
    caller = request.get(CALLER)
    if caller is not None and caller.session is not None:
        return caller.session
    session_id = request.cookies.get(request.app[RESOURCE].cookie_name)
    return session_hash(session_id) if session_id else None
