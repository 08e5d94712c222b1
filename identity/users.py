"""User accounts in SQL (``SqlUserRepository``)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlalchemy import Row, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from identity.account_rules import AccountRules, level_for
from identity.activities import SqlActivityRepository
from identity.db import users, utcnow
from identity.errors import Conflict
from identity.labels import SqlLabelRepository, SqlLevelRepository
from identity.models import Activity, User
from identity.storage import reading, transaction

T = TypeVar("T")

#: The PostgreSQL advisory lock serialising sign-ups that may be the first account.
_FIRST_SIGN_UP_LOCK = 0x617574687A01  # "authz" + 1

USER_COLUMNS = (
    users.c.id,
    users.c.uid,
    users.c.email,
    users.c.username,
    users.c.role,
    users.c.level,
    users.c.state,
    users.c.otp,
    users.c.referral_id,
    users.c.data,
    users.c.created_at,
    users.c.updated_at,
)


def user_from_row(row: Row[Any]) -> User:
    return User(
        id=row.id,
        uid=row.uid,
        email=row.email,
        username=row.username,
        role=row.role,
        level=row.level,
        state=row.state,
        otp=bool(row.otp),
        referral_id=row.referral_id,
        data=row.data,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@dataclass(frozen=True, slots=True)
class Credentials:
    """What login needs beyond the user: the password hash and the encrypted TOTP seed."""

    user: User
    password_digest: str
    otp_secret_encrypted: str | None
    otp_last_step: int | None


def new_uid(prefix: str) -> str:
    """Barong's uid shape: the prefix, upper case, then 10 upper-case hex digits."""
    return prefix.upper() + secrets.token_hex(5).upper()


class SqlUserRepository:
    """Reads and writes the ``users`` table."""

    def __init__(self, engine: AsyncEngine, uid_prefix: str = "ID") -> None:
        self._engine = engine
        self._uid_prefix = uid_prefix

    async def get_by_uid(self, uid: str) -> User | None:
        async with reading(self._engine) as conn:
            row = (await conn.execute(select(*USER_COLUMNS).where(users.c.uid == uid))).first()
        return user_from_row(row) if row else None

    async def get_by_id(self, user_id: int) -> User | None:
        async with reading(self._engine) as conn:
            row = (await conn.execute(select(*USER_COLUMNS).where(users.c.id == user_id))).first()
        return user_from_row(row) if row else None

    async def get_by_email(self, email: str) -> User | None:
        async with reading(self._engine) as conn:
            row = (await conn.execute(select(*USER_COLUMNS).where(users.c.email == email))).first()
        return user_from_row(row) if row else None

    async def taken(self, *, email: str | None = None, username: str | None = None) -> list[str]:
        """Which of ``email`` / ``username`` already belong to someone: ``["email.taken", ...]``."""
        found: list[str] = []
        async with reading(self._engine) as conn:
            if email and await conn.scalar(select(users.c.id).where(users.c.email == email)) is not None:
                found.append("email.taken")
            if (
                username
                and await conn.scalar(select(users.c.id).where(users.c.username == username)) is not None
            ):
                found.append("username.taken")
        return found

    async def credentials(self, email: str) -> Credentials | None:
        query = select(
            *USER_COLUMNS, users.c.password_digest, users.c.otp_secret_encrypted, users.c.otp_last_step
        ).where(users.c.email == email)
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return Credentials(
            user_from_row(row), row.password_digest, row.otp_secret_encrypted, row.otp_last_step
        )

    async def create(
        self,
        *,
        email: str,
        password_digest: str,
        role: str = "member",
        state: str = "pending",
        level: int = 0,
        username: str | None = None,
        otp_secret_encrypted: str | None = None,
        data: str | None = None,
        referral_id: int | None = None,
    ) -> User:
        """Insert a user with a fresh unique uid; a taken e-mail or username raises :class:`Conflict`."""
        clashes = await self.taken(email=email, username=username)
        if clashes:
            raise Conflict(clashes[0])

        async def write(conn: AsyncConnection, uid: str) -> None:
            await self.create_in(
                conn,
                uid=uid,
                email=email,
                password_digest=password_digest,
                role=role,
                state=state,
                level=level,
                username=username,
                otp_secret_encrypted=otp_secret_encrypted,
                data=data,
                referral_id=referral_id,
            )

        uid, _ = await self._with_fresh_uid(write)
        user = await self.get_by_uid(uid)
        assert user is not None
        return user

    async def create_in(
        self,
        conn: AsyncConnection,
        *,
        email: str,
        password_digest: str,
        role: str = "member",
        state: str = "pending",
        level: int = 0,
        username: str | None = None,
        otp_secret_encrypted: str | None = None,
        data: str | None = None,
        referral_id: int | None = None,
        uid: str | None = None,
    ) -> tuple[int, str]:
        """Insert a user on ``conn`` (inside the caller's transaction); returns its id and uid.

        A taken e-mail fails the caller's transaction (:class:`Conflict` from ``identity.storage``).
        """
        uid = uid or new_uid(self._uid_prefix)
        now = utcnow()
        result = await conn.execute(
            users.insert().values(
                uid=uid,
                email=email,
                username=username,
                referral_id=referral_id,
                password_digest=password_digest,
                role=role,
                level=level,
                state=state,
                otp=otp_secret_encrypted is not None,
                otp_secret_encrypted=otp_secret_encrypted,
                data=data,
                created_at=now,
                updated_at=now,
            )
        )
        return int(result.inserted_primary_key[0]), uid

    async def _with_fresh_uid(self, write: Callable[[AsyncConnection, str], Awaitable[T]]) -> tuple[str, T]:
        """Run ``write`` in one transaction with a newly drawn uid; returns the uid and what ``write`` gave.

        A uid already taken (astronomically rare) draws another; any other conflict is raised.
        """
        for _ in range(10):
            uid = new_uid(self._uid_prefix)
            try:
                async with transaction(self._engine, conflict_key="email.taken") as conn:
                    result = await write(conn, uid)
            except Conflict:
                if await self._uid_taken(uid):
                    continue
                raise
            return uid, result
        raise Conflict("uid.taken")

    async def sign_up(
        self,
        *,
        email: str,
        password_digest: str,
        username: str | None,
        data: str | None,
        referral_id: int | None,
        activity: Activity,
        first_superadmin: bool,
        rules: AccountRules,
    ) -> tuple[User, bool]:
        """Insert a pending member and its sign-up ``activity`` (its user id filled in) in one transaction;
        with ``first_superadmin``, the only account becomes an active superadmin with a verified e-mail in that
        same transaction.  Returns the user and whether it was promoted.

        All or nothing: a sign-up cut off half-way (the database gone) leaves no account that could be neither
        confirmed nor signed up again, and no first account stuck as a pending member.
        """
        clashes = await self.taken(email=email, username=username)
        if clashes:
            raise Conflict(clashes[0])
        # Only a sign-up that finds no account can be the first; those few are serialised (see below).
        may_be_first = first_superadmin and await self.count() == 0

        async def write(conn: AsyncConnection, uid: str) -> bool:
            if may_be_first and conn.dialect.name == "postgresql":
                # Two first sign-ups in flight would each count only their own uncommitted row; the lock
                # makes the second count the first's.  SQLite allows one writer at a time anyway.
                await conn.execute(select(func.pg_advisory_xact_lock(_FIRST_SIGN_UP_LOCK)))
            user_id, _ = await self.create_in(
                conn,
                uid=uid,
                email=email,
                password_digest=password_digest,
                data=data,
                username=username,
                referral_id=referral_id,
            )
            await SqlActivityRepository.add_in(conn, [replace(activity, user_id=user_id)])
            return may_be_first and await self._promote_if_only_in(conn, user_id, rules)

        uid, promoted = await self._with_fresh_uid(write)
        user = await self.get_by_uid(uid)
        assert user is not None
        return user, promoted

    @classmethod
    async def _promote_if_only_in(cls, conn: AsyncConnection, user_id: int, rules: AccountRules) -> bool:
        """Make ``user_id`` an active superadmin with a verified e-mail if it is the only user."""
        only_user = select(func.count()).select_from(users).scalar_subquery() == 1
        result = await conn.execute(
            update(users)
            .where(users.c.id == user_id, only_user)
            .values(role="superadmin", updated_at=utcnow())
        )
        if result.rowcount != 1:
            return False
        await cls.put_label_in(conn, user_id, "email", "verified", "private", rules)
        # The label recomputed the state from the rules; the first account is active whatever they say.
        await conn.execute(update(users).where(users.c.id == user_id).values(state="active"))
        return True

    async def _uid_taken(self, uid: str) -> bool:
        async with reading(self._engine) as conn:
            return await conn.scalar(select(users.c.id).where(users.c.uid == uid)) is not None

    async def update(self, uid: str, **values: Any) -> User | None:
        """Set columns of one user; returns the updated user (None if absent)."""
        values["updated_at"] = utcnow()
        async with transaction(self._engine) as conn:
            result = await conn.execute(update(users).where(users.c.uid == uid).values(**values))
        if result.rowcount == 0:
            return None
        return await self.get_by_uid(uid)

    async def otp_secret(self, user_id: int) -> str | None:
        """The encrypted TOTP secret of a user (None when none was generated)."""
        async with reading(self._engine) as conn:
            return await conn.scalar(select(users.c.otp_secret_encrypted).where(users.c.id == user_id))

    async def claim_otp_step(self, user_id: int, step: int) -> bool:
        """Record ``step`` as the last TOTP step used; False when it (or a later one) was used already."""
        query = (
            update(users)
            .where(users.c.id == user_id)
            .where(or_(users.c.otp_last_step.is_(None), users.c.otp_last_step < step))
            .values(otp_last_step=step)
        )
        async with transaction(self._engine) as conn:
            result = await conn.execute(query)
        return result.rowcount == 1

    @staticmethod
    async def lock_in(conn: AsyncConnection, uid: str) -> int | None:
        """The id of user ``uid`` (None if absent), its row locked until ``conn``'s transaction ends.

        On PostgreSQL the row lock serialises changes of one user.  SQLite has no FOR UPDATE: there a
        :func:`identity.storage.transaction` holds the database's write lock from its start.
        """
        return await conn.scalar(select(users.c.id).where(users.c.uid == uid).with_for_update())

    @staticmethod
    async def get_in(conn: AsyncConnection, uid: str) -> User | None:
        """User ``uid`` as ``conn`` sees it (inside the caller's transaction)."""
        row = (await conn.execute(select(*USER_COLUMNS).where(users.c.uid == uid))).first()
        return user_from_row(row) if row else None

    @staticmethod
    async def _recompute_in(conn: AsyncConnection, user_id: int, rules: AccountRules) -> None:
        """Level and state from the user's labels (§4.7), after a private label changed."""
        labels = await SqlLabelRepository.for_user_in(conn, user_id)
        levels = await SqlLevelRepository.list_in(conn)
        await conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(state=rules.state_for(labels), level=level_for(levels, labels), updated_at=utcnow())
        )

    @classmethod
    async def put_label_in(
        cls,
        conn: AsyncConnection,
        user_id: int,
        key: str,
        value: str,
        scope: str,
        rules: AccountRules,
        description: str | None = None,
    ) -> None:
        """Set a label on ``conn``; a private one recomputes level and state.  The label is written before the
        labels are read back (see :meth:`lock_in`)."""
        await SqlLabelRepository.put_in(conn, user_id, key, value, scope, description)
        if scope == "private":
            await cls._recompute_in(conn, user_id, rules)

    @classmethod
    async def delete_label_in(
        cls, conn: AsyncConnection, user_id: int, key: str, scope: str, rules: AccountRules
    ) -> bool:
        """Remove a label on ``conn``; a private one recomputes level and state.  True when there was one."""
        removed = await SqlLabelRepository.delete_in(conn, user_id, key, scope)
        if removed and scope == "private":
            await cls._recompute_in(conn, user_id, rules)
        return removed

    @classmethod
    async def disable_otp_in(cls, conn: AsyncConnection, user_id: int, rules: AccountRules) -> None:
        """Turn 2FA off on ``conn``: the private label ``otp:enabled`` goes (level and state recomputed), and
        the flag and the TOTP secret with it."""
        await cls.delete_label_in(conn, user_id, "otp", "private", rules)
        await conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(otp=False, otp_secret_encrypted=None, updated_at=utcnow())
        )

    async def put_label(self, uid: str, key: str, value: str, scope: str, rules: AccountRules) -> User | None:
        """Set a label; a private one recomputes the user's level and state (§4.7) in the same transaction.

        Returns the user as it is afterwards, None when there is no such user.
        """
        async with transaction(self._engine) as conn:
            user_id = await self.lock_in(conn, uid)
            if user_id is None:
                return None
            await self.put_label_in(conn, user_id, key, value, scope, rules)
        return await self.get_by_uid(uid)

    async def delete_label(
        self, uid: str, key: str, scope: str, rules: AccountRules
    ) -> tuple[User, bool] | None:
        """Remove a label; a private one recomputes level and state (§4.7) in the same transaction.

        Returns the user as it is afterwards and whether a label was removed; None when there is no such user.
        """
        async with transaction(self._engine) as conn:
            user_id = await self.lock_in(conn, uid)
            if user_id is None:
                return None
            removed = await self.delete_label_in(conn, user_id, key, scope, rules)
        user = await self.get_by_uid(uid)
        return (user, removed) if user is not None else None

    async def disable_otp(self, uid: str, rules: AccountRules) -> User | None:
        """Turn 2FA off in one transaction (:meth:`disable_otp_in`); the user afterwards, None if absent."""
        async with transaction(self._engine) as conn:
            user_id = await self.lock_in(conn, uid)
            if user_id is None:
                return None
            await self.disable_otp_in(conn, user_id, rules)
        return await self.get_by_uid(uid)

    async def count(self) -> int:
        async with reading(self._engine) as conn:
            return int(await conn.scalar(select(func.count()).select_from(users)) or 0)
