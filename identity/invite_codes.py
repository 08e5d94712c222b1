"""Invite codes for sign-ups through the token API (``POST /v1/user``), created by admins with the CLI.

A code may be used ``max_uses`` times until ``expires_at`` (no expiry when unset).  A use is counted from the
moment of sign-up: confirmed sign-ups (``issued``) plus pending, unexpired ones (they reserve a use until
they are confirmed or expire), as Financelime counts them.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from identity.db import invite_codes, signups, utcnow
from identity.errors import Conflict, InviteExhausted, InviteNotFound, ValidationFailed
from identity.storage import reading, transaction

#: What a client may send as an invite code (Financelime's rule).
CODE_FORMAT = re.compile(r"[0-9A-Za-z_-]{3,16}")
_ALPHABET = string.ascii_letters + string.digits
GENERATED_LENGTH = 12  # 62^12: about 71 bits


@dataclass(frozen=True, slots=True)
class InviteCode:
    """An invite code with its use counts (``pending``: unconfirmed sign-ups holding a use)."""

    id: int
    code: str
    max_uses: int
    issued: int
    pending: int
    expires_at: datetime | None
    created_by: str | None
    created_at: datetime | None


def _code(row: Row[Any], pending: int = 0) -> InviteCode:
    return InviteCode(
        id=row.id,
        code=row.code,
        max_uses=row.max_uses,
        issued=row.issued,
        pending=pending,
        expires_at=row.expires_at,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _usable(now: datetime) -> Any:
    return or_(invite_codes.c.expires_at.is_(None), invite_codes.c.expires_at > now)


def _pending(now: datetime) -> Any:
    """The number of pending, unexpired sign-ups of each code (a correlated subquery)."""
    return (
        select(func.count())
        .select_from(signups)
        .where(signups.c.invite_code_id == invite_codes.c.id, signups.c.expires_at > now)
        .scalar_subquery()
    )


class SqlInviteCodeRepository:
    """Invite codes in SQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self,
        *,
        max_uses: int = 1,
        expires_at: datetime | None = None,
        created_by: str | None = None,
        code: str | None = None,
    ) -> InviteCode:
        """A new code (random unless ``code`` is given); a taken ``code`` raises :class:`Conflict`."""
        if max_uses < 1:
            raise ValidationFailed("invite_code.max_uses.invalid")
        if code is not None and not CODE_FORMAT.fullmatch(code):
            raise ValidationFailed("invite_code.code.invalid")
        now = utcnow()
        if expires_at is not None and expires_at <= now:
            raise ValidationFailed("invite_code.expires_at.in_the_past")
        chosen = code or "".join(secrets.choice(_ALPHABET) for _ in range(GENERATED_LENGTH))
        async with transaction(self._engine, conflict_key="invite_code.code.taken") as conn:
            await conn.execute(
                invite_codes.insert().values(
                    code=chosen,
                    max_uses=max_uses,
                    issued=0,
                    expires_at=expires_at,
                    created_by=created_by,
                    created_at=now,
                    updated_at=now,
                )
            )
        found = await self.get(chosen)
        if found is None:  # pragma: no cover - deleted between insert and read
            raise Conflict("invite_code.code.taken")
        return found

    async def get(self, code: str) -> InviteCode | None:
        now = utcnow()
        query = select(invite_codes, _pending(now).label("pending")).where(invite_codes.c.code == code)
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).first()
        return _code(row, row.pending) if row else None

    async def list(self) -> list[InviteCode]:
        now = utcnow()
        query = select(invite_codes, _pending(now).label("pending")).order_by(invite_codes.c.id)
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [_code(row, row.pending) for row in rows]

    @staticmethod
    async def reserve_in(conn: AsyncConnection, code: str, now: datetime, *, required: bool) -> int | None:
        """The id of ``code`` when it has a use left for one more sign-up, in the caller's transaction.

        An unknown or expired code raises :class:`InviteNotFound`; a used-up one :class:`InviteExhausted`
        when codes are required, else None (the sign-up goes on without one).  The code's row is locked
        (PostgreSQL) so that two sign-ups cannot both take its last use; on SQLite the caller holds the
        database's write lock already.
        """
        row = (
            await conn.execute(
                select(invite_codes.c.id, invite_codes.c.max_uses, invite_codes.c.issued)
                .where(invite_codes.c.code == code, _usable(now))
                .with_for_update()
            )
        ).first()
        if row is None:
            raise InviteNotFound()
        pending = await conn.scalar(
            select(func.count())
            .select_from(signups)
            .where(signups.c.invite_code_id == row.id, signups.c.expires_at > now)
        )
        if row.issued + (pending or 0) < row.max_uses:
            return int(row.id)
        if required:
            raise InviteExhausted()
        return None

    @staticmethod
    async def count_use_in(conn: AsyncConnection, invite_code_id: int) -> None:
        """A pending sign-up of the code was confirmed: it becomes an issued use."""
        await conn.execute(
            invite_codes.update()
            .where(invite_codes.c.id == invite_code_id)
            .values(issued=invite_codes.c.issued + 1, updated_at=utcnow())
        )
