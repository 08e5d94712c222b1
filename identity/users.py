"""User accounts in SQL (``SqlUserRepository``)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from identity.db import users, utcnow
from identity.errors import Conflict
from identity.models import User
from identity.storage import reading, transaction

_USER_COLUMNS = (
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


def _user(row: Row[Any]) -> User:
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
            row = (await conn.execute(select(*_USER_COLUMNS).where(users.c.uid == uid))).first()
        return _user(row) if row else None

    async def get_by_id(self, user_id: int) -> User | None:
        async with reading(self._engine) as conn:
            row = (await conn.execute(select(*_USER_COLUMNS).where(users.c.id == user_id))).first()
        return _user(row) if row else None

    async def credentials(self, email: str) -> Credentials | None:
        query = select(
            *_USER_COLUMNS, users.c.password_digest, users.c.otp_secret_encrypted, users.c.otp_last_step
        ).where(users.c.email == email)
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return Credentials(_user(row), row.password_digest, row.otp_secret_encrypted, row.otp_last_step)

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
    ) -> User:
        """Insert a user with a fresh unique uid; a taken e-mail or username raises :class:`Conflict`."""
        async with reading(self._engine) as conn:
            clash = await conn.scalar(
                select(users.c.id).where(
                    or_(users.c.email == email, users.c.username == username if username else False)
                )
            )
        if clash is not None:
            raise Conflict("email.taken")
        for _ in range(10):
            uid = new_uid(self._uid_prefix)
            now = utcnow()
            values = dict(
                uid=uid,
                email=email,
                username=username,
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
            try:
                async with transaction(self._engine, conflict_key="email.taken") as conn:
                    await conn.execute(users.insert().values(**values))
            except Conflict:
                if await self._uid_taken(uid):
                    continue  # astronomically rare: draw another uid
                raise
            user = await self.get_by_uid(uid)
            assert user is not None
            return user
        raise Conflict("uid.taken")

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

    async def count(self) -> int:
        async with reading(self._engine) as conn:
            return int(await conn.scalar(select(func.count()).select_from(users)) or 0)
