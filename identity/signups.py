"""E-mail sign-up and password reset of the token API (Financelime seed 000: ``POST``/``PUT /v1/user``,
``GET /u/{key}``, ``GET /p/{key}``).

Users of this API never choose a password: confirming the mailed link creates the account (e-mail verified,
so level and state follow ``policies/barong.yml``) with a generated password that is mailed to them, and a
confirmed password reset mails a new one.  Unlike the original, keys come from ``secrets`` and are stored
only as digests, passwords are hashed with argon2id, and a reset ends every session of the account.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from redis.asyncio import Redis
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from identity.account_rules import AccountRules
from identity.activity_log import ClientInfo, UserActivityLog
from identity.db import signups, users
from identity.errors import Conflict, RecordNotFound
from identity.invite_codes import SqlInviteCodeRepository
from identity.models import User
from identity.notifications import Notifier
from identity.passwords import generate_password, hash_password_off_loop
from identity.redis_errors import redis_guard
from identity.send_throttle import SendThrottle
from identity.sessions import RedisSessionStore
from identity.storage import reading, transaction
from identity.users import SqlUserRepository

#: Confirmation keys: 16 characters of Financelime's alphabet (no look-alikes), about 77 bits.
KEY_ALPHABET = "abcefghijkmnopqrtuvwxyz23479"
KEY_FORMAT = re.compile(f"[{KEY_ALPHABET}]{{16}}")
LANGUAGES = ("en", "ru")


def new_key() -> str:
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(16))


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SignUp:
    """A sign-up request: the address, the invite code ("" for none) and the mail language."""

    email: str
    invite_code: str
    language: str


class SignupService:
    """Sign-up by mailed link with an invite code, and password reset by mailed link."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        users: SqlUserRepository,
        sessions: RedisSessionStore,
        redis: Redis,
        namespace: str,
        activity: UserActivityLog,
        notifier: Notifier,
        confirmations: SendThrottle,
        resets: SendThrottle,
        rules: AccountRules,
        invite_required: bool,
        signup_ttl: int,
        reset_ttl: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._users = users
        self._sessions = sessions
        self._redis = redis
        self._ns = namespace
        self._activity = activity
        self._notifier = notifier
        self._confirmations = confirmations
        self._resets = resets
        self._rules = rules
        self.invite_required = invite_required
        self._signup_ttl = signup_ttl
        self._reset_ttl = reset_ttl
        self._clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def sign_up(self, form: SignUp, client: ClientInfo) -> None:
        """Hold the sign-up until its link is confirmed, and mail the link.

        The e-mail must belong to no account and to no pending sign-up; a given invite code must exist and
        have a use left (:class:`identity.errors.InviteNotFound`, ``InviteExhausted``).  Every request counts
        against the confirmation limits of the address and the client (``TooManyRequests``).
        """
        await self._confirmations.admit(form.email, client.ip)
        now = self._now()
        key = new_key()
        async with transaction(self._engine, conflict_key="email.taken") as conn:
            # Against a concurrent sign-up: on SQLite the transaction holds the write lock from its start; on
            # PostgreSQL the invite code's row is locked and a pending address is unique.  This frees the
            # address of an expired sign-up.
            await conn.execute(
                delete(signups).where(signups.c.email == form.email, signups.c.expires_at <= now)
            )
            invite_id = None
            if form.invite_code:
                invite_id = await SqlInviteCodeRepository.reserve_in(
                    conn, form.invite_code, now, required=self.invite_required
                )
            if await conn.scalar(select(users.c.id).where(users.c.email == form.email)) is not None:
                raise Conflict("email.taken")
            if await conn.scalar(select(signups.c.id).where(signups.c.email == form.email)) is not None:
                raise Conflict("email.taken")
            await conn.execute(
                signups.insert().values(
                    email=form.email,
                    key_hash=key_digest(key),
                    language=form.language,
                    invite_code_id=invite_id,
                    user_ip=client.ip,
                    expires_at=now + timedelta(seconds=self._signup_ttl),
                    created_at=now,
                    updated_at=now,
                )
            )
        await self._notifier.signup_link(form.email, form.language, key, self._signup_ttl)

    async def confirm(self, key: str, client: ClientInfo) -> User:
        """Create the account of a pending sign-up and mail its password; unknown, expired or used keys (and
        an address that got an account meanwhile) raise :class:`RecordNotFound`."""
        if not KEY_FORMAT.fullmatch(key):
            raise RecordNotFound()
        digest, now = key_digest(key), self._now()
        live = (signups.c.key_hash == digest) & (signups.c.expires_at > now)
        # Checked before hashing: a guessed key must not cost an argon2 hash.
        async with reading(self._engine) as conn:
            if await conn.scalar(select(signups.c.id).where(live)) is None:
                raise RecordNotFound()
        password = generate_password()
        password_digest = await hash_password_off_loop(password)
        try:
            async with transaction(self._engine, conflict_key="email.taken") as conn:
                # Deleting the row claims the key: of two concurrent confirmations, one finds nothing.
                row = (
                    await conn.execute(
                        delete(signups)
                        .where(live)
                        .returning(signups.c.email, signups.c.language, signups.c.invite_code_id)
                    )
                ).first()
                if row is None:
                    raise RecordNotFound()
                data = orjson.dumps({"language": row.language}).decode()
                user_id, uid = await self._users.create_in(
                    conn, email=row.email, password_digest=password_digest, data=data
                )
                await SqlUserRepository.put_label_in(
                    conn, user_id, "email", "verified", "private", self._rules
                )
                if row.invite_code_id is not None:
                    await SqlInviteCodeRepository.count_use_in(conn, row.invite_code_id)
        except Conflict:
            raise RecordNotFound() from None  # the address got an account since (the sign-up stays unused)
        user = await self._users.get_by_uid(uid)
        if user is None:  # pragma: no cover - deleted between commit and read
            raise RecordNotFound()
        await self._activity.record(user, client, "account", "signup")
        await self._notifier.account_password(user, password)
        return user

    def _reset_key(self, digest: str) -> str:
        return f"{self._ns}:reset_link:{digest}"

    def _reset_pointer(self, uid: str) -> str:
        return f"{self._ns}:reset_link_of:{uid}"

    async def request_reset(self, email: str, client: ClientInfo) -> None:
        """Mail a password reset link to the account of ``email`` (:class:`RecordNotFound` if none).

        Only the newest link of an account works: a new request voids the one before.  Every request counts
        against the reset limits, whether or not the address has an account.
        """
        await self._resets.admit(email, client.ip)
        user = await self._users.get_by_email(email)
        if user is None:
            raise RecordNotFound()
        key = new_key()
        digest = key_digest(key)
        async with redis_guard():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self._reset_key(digest), user.uid, ex=self._reset_ttl)
                pipe.getset(self._reset_pointer(user.uid), digest)
                pipe.expire(self._reset_pointer(user.uid), self._reset_ttl)
                _, previous, _ = await pipe.execute()
            if previous and previous != digest:
                await self._redis.delete(self._reset_key(previous))
        await self._activity.record(user, client, "password", "request password reset")
        await self._notifier.reset_link(user, key, client, self._reset_ttl)

    async def confirm_reset(self, key: str, client: ClientInfo) -> User:
        """Give the account of a reset link a new password (mailed), and end all its sessions."""
        if not KEY_FORMAT.fullmatch(key):
            raise RecordNotFound()
        stored = self._reset_key(key_digest(key))
        async with redis_guard():
            uid = await self._redis.get(stored)
        user = await self._users.get_by_uid(uid) if uid else None
        if user is None:
            raise RecordNotFound()
        password = generate_password()
        password_digest = await hash_password_off_loop(password)
        async with redis_guard():
            claimed = await self._redis.delete(stored)  # of two concurrent confirmations, one deletes it
        if not claimed:
            raise RecordNotFound()
        try:
            updated = await self._users.update(user.uid, password_digest=password_digest)
        except Exception:
            async with redis_guard():
                await self._redis.set(stored, user.uid, ex=self._reset_ttl)  # nothing changed: the link works
            raise
        async with redis_guard():
            await self._redis.delete(self._reset_pointer(user.uid))
        await self._sessions.destroy_all(user.uid)
        await self._activity.record(user, client, "password", "password reset")
        await self._notifier.new_password(updated or user, password)
        return updated or user
