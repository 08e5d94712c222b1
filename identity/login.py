"""Logging in and out with e-mail, password and TOTP (barong-behavior.md §3.1–3.4, with decisions.md).

Unlike Barong, the password is checked before anything about the account is revealed (a dummy hash is
verified for unknown e-mails), every login gets a new session id, and failed logins are throttled.
"""

from __future__ import annotations

import orjson
from collections.abc import Callable
from dataclasses import dataclass

from identity import totp
from identity.activities import SqlActivityRepository
from identity.errors import AccountNotUsable, InvalidCredentials, InvalidOtp, OtpRequired, SessionNotFound
from identity.models import USABLE_STATES, Activity, User
from identity.passwords import hash_password, needs_rehash, verify_password
from identity.secretbox import SecretBox
from identity.sessions import RedisSessionStore, SessionRecord, session_hash
from identity.throttle import LoginThrottle
from identity.users import SqlUserRepository


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Where a request comes from, as the audit trail records it."""

    ip: str
    user_agent: str
    country: str | None = None


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: User
    session_id: str
    session: SessionRecord


def otp_context(uid: str) -> str:
    return f"otp:{uid}"


class LoginService:
    """Opens and closes browser sessions."""

    def __init__(
        self,
        users: SqlUserRepository,
        sessions: RedisSessionStore,
        activities: SqlActivityRepository,
        throttle: LoginThrottle,
        box: SecretBox,
        clock: Callable[[], float],
    ) -> None:
        self._users = users
        self._sessions = sessions
        self._activities = activities
        self._throttle = throttle
        self._box = box
        self._clock = clock

    async def _record(self, user: User, client: ClientInfo, action: str, result: str, reason: str | None = None) -> None:
        await self._activities.add(
            Activity(
                category="user",
                topic="session",
                action=action,
                result=result,
                user_id=user.id,
                user_ip=client.ip,
                user_agent=client.user_agent,
                user_ip_country=client.country,
                data=orjson.dumps({"reason": reason}).decode() if reason else None,
            )
        )

    async def login(
        self,
        email: str,
        password: str,
        otp_code: str | None,
        client: ClientInfo,
        previous_session_id: str | None = None,
    ) -> LoginResult:
        await self._throttle.check(client.ip, email)
        creds = await self._users.credentials(email)
        if not verify_password(creds.password_digest if creds else None, password):
            await self._throttle.failed(client.ip, email)
            if creds is not None:
                await self._record(creds.user, client, "login", "failed", "Invalid Email or Password")
            raise InvalidCredentials()
        user = creds.user
        if user.state not in USABLE_STATES:
            await self._record(user, client, "login", "failed", f"State is {user.state}")
            raise AccountNotUsable(user.state)
        if user.otp:
            if not (otp_code or "").strip():
                raise OtpRequired()
            secret = self._box.decrypt(creds.otp_secret_encrypted or "", context=otp_context(user.uid))
            step = totp.matching_step(secret, otp_code or "", now=self._clock(), last_step=creds.otp_last_step)
            if step is None or not await self._users.claim_otp_step(user.id, step):
                await self._throttle.failed(client.ip, email)
                await self._record(user, client, "login::2fa", "failed", "Invalid OTP")
                raise InvalidOtp()
        await self._throttle.succeeded(email)
        if needs_rehash(creds.password_digest):
            await self._users.update(user.uid, password_digest=hash_password(password))
        if previous_session_id:
            # A new id at every login: a cookie planted before login is never promoted.
            await self._sessions.destroy(session_hash(previous_session_id))
        session_id, record = await self._sessions.create(user.uid, client.ip, client.user_agent, now=self._clock())
        await self._record(user, client, "login::2fa" if user.otp else "login", "succeed")
        return LoginResult(user, session_id, record)

    async def logout(self, session_id: str | None, client: ClientInfo) -> None:
        if not session_id:
            raise SessionNotFound()
        digest = session_hash(session_id)
        record = await self._sessions.get(digest)
        if record is None:
            raise SessionNotFound()
        user = await self._users.get_by_uid(record.uid)
        await self._sessions.destroy(digest, record.uid)
        if user is None:
            raise SessionNotFound()
        await self._record(user, client, "logout", "succeed")
