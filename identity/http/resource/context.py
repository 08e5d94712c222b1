"""What every resource handler needs: the bearer check, the caller, and the shared repositories.

Each area (OTP, API keys, phones...) keeps its own service under an app key of its own module; this
context holds what every handler needs: the bearer check, the users, the client's address and agent, the
service clock, the session cookie's name and whether personal data is masked.  ``authenticated`` turns ``handler(request, user)`` into an aiohttp handler
that first verifies the bearer JWT and loads its user.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from identity.activity_log import ClientInfo
from identity.bearer import BearerVerifier
from identity.errors import BearerRejected
from identity.models import User
from identity.sessions import session_hash
from identity.users import SqlUserRepository

PREFIXES = ("/api/v2/barong/resource", "/api/v2/resource")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UserHandler = Callable[[web.Request, User], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ResourceContext:
    bearer: BearerVerifier
    users: SqlUserRepository
    client_info: Callable[[web.Request], ClientInfo]
    clock: Callable[[], float]
    cookie_name: str = "_barong_session"
    masking: bool = True  # API_DATA_MASKING: mask last names, birth dates, phone and document numbers


RESOURCE = web.AppKey("resource", ResourceContext)


async def current_user(request: web.Request) -> User:
    """The user of the request's bearer JWT; 401 ``jwt.decode_and_verify`` when there is none.

    The user is read from SQL, not from the token: a role or state changed since the token was minted
    counts, and an account that may no longer log in is refused.
    """
    ctx = request.app[RESOURCE]
    claims = ctx.bearer.claims(request.headers.get("Authorization"))
    user = await ctx.users.get_by_uid(claims["uid"])
    if user is None or not user.usable:
        raise BearerRejected()
    return user


def authenticated(handler: UserHandler) -> Handler:
    """``handler(request, user)`` behind the bearer check."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return await handler(request, await current_user(request))

    handle.__name__ = getattr(handler, "__name__", "handle")
    handle.__doc__ = handler.__doc__
    return handle


def current_session(request: web.Request) -> str | None:
    """Hash of the session whose cookie the gateway forwarded with the request (None for API-key callers).

    "Revoke the user's other sessions" keeps this one.
    """
    session_id = request.cookies.get(request.app[RESOURCE].cookie_name)
    return session_hash(session_id) if session_id else None
