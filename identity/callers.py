"""Who calls the service's own APIs (resource, admin, token API) with an upstream JWT, and whether they may.

The decision endpoint mints the upstream JWT for one request, but the token is not bound to it: replayed
on another of our endpoints it would still verify.  So the own APIs check each request as the gateway
would have: the role × verb × path table for the request itself (:class:`Permits`, the decision
endpoint's compiled index, injected by the composition root), and that the credential the token was
minted for still holds: the user may log in, the session named by ``sid`` still exists (a logout, a
password reset or a ban revokes it), the API key named by ``api_kid`` is still active.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from identity.api_keys import SqlApiKeyRepository
from identity.bearer import BearerVerifier
from identity.errors import BearerRejected, RequestNotPermitted
from identity.models import USER_HOLDER, User
from identity.sessions import RedisSessionStore
from identity.users import SqlUserRepository

#: The claim naming the session an upstream JWT was minted for (cookie and token sessions): the session
#: record's hash, OpenID Connect's session claim (the token API's ``sessionID``).
SESSION_CLAIM = "sid"
#: The claim naming the API key an upstream JWT was minted for: its kid.
API_KEY_CLAIM = "api_kid"


class Permits(Protocol):
    """The permission table's verdict: may ``role`` call ``method path`` (path without its leading slash,
    in either of the service's spellings)?"""

    def __call__(self, role: str, method: str, path: str, /) -> bool: ...


@dataclass(frozen=True, slots=True)
class Caller:
    """The user behind a request's upstream JWT, and the hash of the session it was minted for (if any)."""

    user: User
    session: str | None


class UpstreamCallers:
    """Checks a request to the own APIs: its upstream JWT, its credential's state, the permission table."""

    def __init__(
        self,
        bearer: BearerVerifier,
        users: SqlUserRepository,
        sessions: RedisSessionStore,
        api_keys: SqlApiKeyRepository,
        permits: Permits,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bearer = bearer
        self._users = users
        self._sessions = sessions
        self._api_keys = api_keys
        self._permits = permits
        self._clock = clock

    async def caller(self, authorization: str | None, method: str, path: str) -> Caller:
        """The caller of ``method path`` (the path as the web layer decoded it) with ``Authorization:
        authorization``.

        Raises :class:`BearerRejected` (no valid token, or its user, session or key no longer usable),
        then :class:`RequestNotPermitted` (the table refuses the user's role this request).
        """
        claims = self._bearer.claims(authorization)
        user = await self._users.get_by_uid(claims["uid"])
        if user is None or not user.usable:
            raise BearerRejected()
        session = await self._live_session(claims, user)
        await self._check_api_key(claims, user)
        self.check_permitted(user.role, method, path)
        return Caller(user, session)

    def check_permitted(self, role: str, method: str, path: str) -> None:
        """Raise :class:`RequestNotPermitted` unless the table lets ``role`` call ``method path``.

        The table's paths have no leading slash; the request's has one.
        """
        if not self._permits(role, method, path.removeprefix("/")):
            raise RequestNotPermitted()

    async def _live_session(self, claims: dict[str, Any], user: User) -> str | None:
        """The token's ``sid``, if it names a session of the user that is still live."""
        if SESSION_CLAIM not in claims:
            return None
        digest = claims[SESSION_CLAIM]
        if not isinstance(digest, str) or not digest:
            raise BearerRejected()
        record = await self._sessions.get(digest)
        if record is None or record.uid != user.uid or record.expire_time <= self._clock():
            raise BearerRejected()
        return digest

    async def _check_api_key(self, claims: dict[str, Any], user: User) -> None:
        """The token's ``api_kid``, if any, must name an active key of the user."""
        if API_KEY_CLAIM not in claims:
            return
        kid = claims[API_KEY_CLAIM]
        key = await self._api_keys.get(kid) if isinstance(kid, str) and kid else None
        if key is None or not key.active or key.holder_type != USER_HOLDER or key.holder_id != user.id:
            raise BearerRejected()
