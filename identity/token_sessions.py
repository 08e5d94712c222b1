"""Token sessions (the Financelime-compatible API): log in for an access and a refresh token, refresh,
list and revoke sessions.

A token session is a record of the same Redis session store as the browser sessions of Barong's identity
API (:class:`identity.sessions.RedisSessionStore`), so both kinds are listed, revoked and invalidated
together: Barong's logout, a password reset or an admin's ban ends them alike.  The access token is a
short-lived JWT (:mod:`identity.access_tokens`); the refresh token is an opaque random string, stored only as
a digest, good for one refresh (handing in a used one ends the session).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from identity.access_tokens import AccessClaims, AccessTokens
from identity.activity_log import ClientInfo
from identity.errors import AccessTokenRejected, BadRefreshToken, RefreshTokenRejected
from identity.login import LoginService
from identity.models import User
from identity.sessions import COOKIE, TOKEN, RedisSessionStore, SessionRecord
from identity.users import SqlUserRepository

#: Refresh tokens are 32 random bytes, base64url without padding.
REFRESH_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
#: Public session ids are SHA-256 digests in hex.
SESSION_ID = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Device:
    """What the client says of the device it runs on (all optional)."""

    platform: str = ""
    language: str = ""
    timezone: str = ""
    height: int = 0
    width: int = 0


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """The answer of a login or refresh."""

    access_token: str
    refresh_token: str
    session_id: str


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One active session of a user, as ``GET /v1/sessions`` lists it."""

    session_id: str
    platform: str
    updated_at: int  # epoch seconds of the session's last activity


@dataclass(frozen=True, slots=True)
class TokenHolder:
    """The verified holder of an access token: the user and the live session the token names."""

    user: User
    session: SessionRecord


class TokenSessionService:
    """Logs in for tokens, rotates refresh tokens, verifies access tokens against live sessions."""

    def __init__(
        self,
        sessions: RedisSessionStore,
        tokens: AccessTokens,
        users: SqlUserRepository,
        login: LoginService,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._tokens = tokens
        self._users = users
        self._login = login
        self._clock = clock

    async def login(
        self,
        email: str,
        password: str,
        otp_code: str | None,
        client: ClientInfo,
        client_id: str,
        device: Device,
    ) -> TokenGrant:
        """Check the credentials (throttled, 2FA, recorded) and open a token session."""
        user = await self._login.check(email, password, otp_code, client)
        refresh_token = secrets.token_urlsafe(32)
        _, record = await self._sessions.create(
            user.uid,
            client.ip,
            client.user_agent,
            now=self._clock(),
            kind=TOKEN,
            platform=device.platform,
            client_id=client_id,
            refresh_token=refresh_token,
        )
        await self._login.logged_in(user, client)
        return TokenGrant(self._tokens.issue(user.uid, record.hash), refresh_token, record.hash)

    async def refresh(self, refresh_token: str, client: ClientInfo) -> TokenGrant:
        """New access and refresh tokens for the session of ``refresh_token``, which is used up."""
        if not REFRESH_TOKEN.fullmatch(refresh_token):
            raise BadRefreshToken()
        new_token = secrets.token_urlsafe(32)
        rotation = await self._sessions.rotate_refresh(refresh_token, new_token, client.ip, now=self._clock())
        record = rotation.session
        if rotation.outcome != "rotated" or record is None:
            raise RefreshTokenRejected()
        user = await self._users.get_by_uid(record.uid)
        if user is None or not user.usable:
            await self._sessions.destroy(record.hash, record.uid)
            raise RefreshTokenRejected()
        return TokenGrant(self._tokens.issue(user.uid, record.hash), new_token, record.hash)

    async def holder(self, token: str) -> TokenHolder:
        """The user and live session of an access token; raises :class:`AccessTokenRejected`."""
        claims = self._tokens.verify(token)
        record = await self._sessions.get(claims.session)
        if record is None or not names_live_session(claims, record, self._clock()):
            raise AccessTokenRejected()
        user = await self._users.get_by_uid(claims.uid)
        if user is None or not user.usable:
            raise AccessTokenRejected()
        return TokenHolder(user, record)

    async def list(self, uid: str) -> list[SessionSummary]:
        """Every active session of ``uid``, browser sessions included, the most recently used first."""
        now = self._clock()
        summaries = [
            SessionSummary(record.hash, _platform(record), self._last_activity(record))
            for record in await self._sessions.list_for_user(uid)
            if record.expire_time > now
        ]
        return sorted(summaries, key=lambda s: (-s.updated_at, s.session_id))

    def _last_activity(self, record: SessionRecord) -> int:
        if record.kind == COOKIE:
            # A browser session's deadline moves with each (coalesced) slide: it tells the last request.
            return max(record.created_at, record.expire_time - self._sessions.expire_time)
        return record.updated_at or record.created_at

    async def revoke(self, uid: str, session_id: str) -> None:
        """End ``uid``'s session ``session_id`` (either kind); someone else's or an unknown one is ignored."""
        record = await self._sessions.get(session_id)
        if record is not None and record.uid == uid:
            await self._sessions.destroy(session_id, uid)


def names_live_session(claims: AccessClaims, record: SessionRecord, now: float) -> bool:
    """Whether ``record`` is the token session an access token names, and still live at ``now``."""
    return record.kind == TOKEN and record.uid == claims.uid and record.expire_time > now


def _platform(record: SessionRecord) -> str:
    return record.platform or record.user_agent
