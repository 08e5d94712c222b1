"""Logging in and out with e-mail, password and TOTP, or with an Auth0 id_token (barong-behavior.md
§3.1–3.6, with decisions.md).

Unlike Barong, the password is checked before anything about the account is revealed (a dummy hash is
verified for unknown e-mails), every login gets a new session id, and failed logins are throttled.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from identity import totp
from identity.account_rules import AccountRules
from identity.activity_log import ClientInfo, UserActivityLog
from identity.errors import (
    AccountNotUsable,
    Auth0Rejected,
    InvalidCredentials,
    InvalidOtp,
    OtpRequired,
    SessionNotFound,
    ValidationFailed,
)
from identity.models import USABLE_STATES, User
from identity.notifications import Notifier
from identity.passwords import hash_password_off_loop, needs_rehash, verify_password_off_loop
from identity.secretbox import SecretBox, SecretBoxError
from identity.sessions import RedisSessionStore, SessionRecord, session_hash
from identity.throttle import LoginThrottle
from identity.users import Credentials, SqlUserRepository

__all__ = ["ClientInfo", "LoginResult", "LoginService", "otp_context"]


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
        activity: UserActivityLog,
        throttle: LoginThrottle,
        box: SecretBox,
        clock: Callable[[], float],
        notifier: Notifier | None = None,
        rules: AccountRules | None = None,
    ) -> None:
        self._users = users
        self._sessions = sessions
        self._activity = activity
        self._throttle = throttle
        self._box = box
        self._clock = clock
        self._notifier = notifier
        self._rules = rules or AccountRules()

    async def login(
        self,
        email: str,
        password: str,
        otp_code: str | None,
        client: ClientInfo,
        previous_session_id: str | None = None,
    ) -> LoginResult:
        """Log in with a browser session (the identity API)."""
        user = await self.check(email, password, otp_code, client)
        result = await self.open(user, client, previous_session_id)
        await self.logged_in(user, client)
        return result

    async def check(self, email: str, password: str, otp_code: str | None, client: ClientInfo) -> User:
        """The user whose credentials these are, throttled and recorded like a login; opens nothing.

        Raises :class:`InvalidCredentials`, :class:`AccountNotUsable`, :class:`OtpRequired`,
        :class:`InvalidOtp`, ``ValidationFailed("totp.error")`` or :class:`TooManyAttempts`.
        """
        await self._throttle.begin(client.ip, email)
        end = self._throttle.abandoned  # also when the request is cancelled: the attempt's slot is given back
        try:
            creds, user = await self._verify(email, password, otp_code, client)
            end = self._throttle.succeeded
        except (InvalidCredentials, InvalidOtp):
            end = self._throttle.failed
            raise
        finally:
            await asyncio.shield(end(client.ip, email))
        if needs_rehash(creds.password_digest):
            await self._users.update(user.uid, password_digest=await hash_password_off_loop(password))
        return user

    async def _verify(
        self, email: str, password: str, otp_code: str | None, client: ClientInfo
    ) -> tuple[Credentials, User]:
        creds = await self._users.credentials(email)
        if not await verify_password_off_loop(creds.password_digest if creds else None, password):
            if creds is not None:
                await self._activity.record(
                    creds.user, client, "session", "login", "failed", "Invalid Email or Password"
                )
            raise InvalidCredentials()
        user = creds.user
        if user.state not in USABLE_STATES:
            await self._activity.record(user, client, "session", "login", "failed", f"State is {user.state}")
            raise AccountNotUsable(user.state)
        if user.otp:
            if not (otp_code or "").strip():
                raise OtpRequired()
            try:
                secret = self._box.decrypt(creds.otp_secret_encrypted or "", context=otp_context(user.uid))
            except SecretBoxError:
                secret = None  # no seed stored (or not readable with this key): no code can be right
            step = totp.matching_step(secret, otp_code or "", now=self._clock()) if secret else None
            if step is None:
                await self._activity.record(user, client, "session", "login::2fa", "failed", "Invalid OTP")
                raise InvalidOtp()
            if not await self._users.claim_otp_step(user.id, step):
                # A right code used a second time: Vault's TOTP engine refuses it as ``totp.error``.
                await self._activity.record(
                    user, client, "session", "login::2fa", "failed", "OTP code already used"
                )
                raise ValidationFailed("totp.error")
        return creds, user

    async def logged_in(self, user: User, client: ClientInfo) -> None:
        """Record a successful login (after :meth:`check` and a session opened) and mail the notice."""
        await self._activity.record(user, client, "session", "login::2fa" if user.otp else "login")
        await self._notify(user, client)

    async def open(
        self, user: User, client: ClientInfo, previous_session_id: str | None = None
    ) -> LoginResult:
        """Open a new session for ``user`` (sign-up, e-mail confirmation, logins)."""
        if previous_session_id:
            # A new id at every login: a cookie planted before login is never promoted.
            await self._sessions.destroy(session_hash(previous_session_id))
        session_id, record = await self._sessions.create(
            user.uid, client.ip, client.user_agent, now=self._clock()
        )
        return LoginResult(user, session_id, record)

    async def _notify(self, user: User, client: ClientInfo) -> None:
        if self._notifier is not None:
            await self._notifier.new_login(user, client, self._clock())

    async def login_auth0(
        self, email: str, email_verified: bool, client: ClientInfo, previous_session_id: str | None = None
    ) -> LoginResult:
        """Log in the owner of a verified Auth0 identity; an unknown but verified e-mail gets an account."""
        user = await self._users.get_by_email(email)
        if user is None:
            if not email_verified:
                raise Auth0Rejected()
            user = await self._accounts_for_auth0(email)
        if user.state not in USABLE_STATES:
            await self._activity.record(user, client, "session", "login", "failed", f"State is {user.state}")
            raise AccountNotUsable(user.state)
        result = await self.open(user, client, previous_session_id)
        await self._activity.record(user, client, "session", "login")
        await self._notify(user, client)
        return result

    async def _accounts_for_auth0(self, email: str) -> User:
        # Nobody knows this password: the account logs in through Auth0 (or resets its password).
        user = await self._users.create(
            email=email, password_digest=await hash_password_off_loop(secrets.token_urlsafe(32))
        )
        verified = await self._users.put_label(user.uid, "email", "verified", "private", self._rules)
        return verified or user

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
        await self._activity.record(user, client, "session", "logout")
