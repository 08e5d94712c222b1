"""The access-token authenticator: ``Authorization: Bearer <access token>`` of the token API (``/v1/oauth``).

Responsible for every request with a bearer token.  The token must be one of our access tokens (an upstream
JWT presented here is refused: a different ``typ``, ``sub`` and audience), unexpired, and its session still
live: a revocation (``DELETE /v1/session``, Barong's logout of all sessions, an admin's ban) takes effect at
once, as for cookie sessions.  No CSRF check (the token is not sent by the browser on its own) and no
address pinning (phones change networks; the token lives minutes).  The principal's upstream JWT carries
the session id as ``sid`` (OpenID Connect's session claim), so upstreams can tell sessions apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from authz.authn.base import NOT_MINE, SubjectDirectory, _NotMine, cached_session, user_principal
from authz.decision import DecisionRequest, Denied, Principal
from authz.snapshots import SnapshotCache
from identity.access_tokens import AccessTokens
from identity.callers import SESSION_CLAIM
from identity.errors import AccessTokenRejected
from identity.models import User
from identity.sessions import RedisSessionStore, SessionRecord
from identity.token_sessions import names_live_session

DENY_TOKEN = "authz.invalid_access_token"


class AccessTokenAuthenticator:
    """Authenticates bearer access tokens against their live token sessions."""

    id = "access_token"

    def __init__(
        self,
        tokens: AccessTokens,
        sessions: RedisSessionStore,
        subjects: SubjectDirectory[User],
        cache: SnapshotCache[str, SessionRecord | None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tokens = tokens
        self._sessions = sessions
        self._subjects = subjects
        self._cache = cache  # shared with the cookie authenticator: "session:<hash>" messages drop both
        self._clock = clock

    async def authenticate(self, request: DecisionRequest) -> Principal | _NotMine:
        header = request.headers.get("Authorization")
        if header is None:
            return NOT_MINE
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return NOT_MINE  # Basic and other schemes are the upstream's business
        try:
            claims = self._tokens.verify(token.strip())
        except AccessTokenRejected:
            raise Denied(401, DENY_TOKEN) from None
        now = self._clock()
        record = await cached_session(self._sessions, self._cache, claims.session)
        if record is None or not names_live_session(claims, record, now):
            # The cached copy may predate a refresh on another instance: ask Redis before refusing.
            record = await cached_session(self._sessions, self._cache, claims.session, fresh=True)
            if record is None or not names_live_session(claims, record, now):
                raise Denied(401, "authz.invalid_session")
        user = await self._subjects.by_uid(claims.uid)
        if user is None:
            raise Denied(401, "authz.invalid_session")
        if not user.usable:
            raise Denied(401, "authz.user_not_active")
        return user_principal(user, self.id, (SESSION_CLAIM, claims.session))
