"""Permissions in SQL (``SqlPermissionRepository``) and their validation (barong-behavior.md §7.1)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from identity.db import permissions, utcnow
from identity.models import Permission
from identity.storage import reading, transaction


def permission_from_row(row: Row[Any]) -> Permission:
    return Permission(
        id=row.id,
        role=row.role,
        verb=row.verb,
        path=row.path,
        action=row.action,
        topic=row.topic,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def permission_rows(perms: Iterable[Permission]) -> list[dict[str, object]]:
    """Insertable rows of the ``permissions`` table, stamped now."""
    now = utcnow()
    return [
        dict(role=p.role, verb=p.verb, path=p.path, action=p.action, topic=p.topic, created_at=now, updated_at=now)
        for p in perms
    ]


class SqlPermissionRepository:
    """Reads and writes the ``permissions`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def has_role(self, role: str) -> bool:
        """Whether any permission names ``role`` (Barong: a role exists when the permissions table has it)."""
        async with reading(self._engine) as conn:
            return await self.has_role_in(conn, role)

    @staticmethod
    async def has_role_in(conn: AsyncConnection, role: str) -> bool:
        """:meth:`has_role`, read on ``conn`` (inside the caller's transaction)."""
        return await conn.scalar(select(permissions.c.id).where(permissions.c.role == role).limit(1)) is not None

    @staticmethod
    async def locked_rows_in(conn: AsyncConnection) -> list[Permission]:
        """Every permission in id order, read on ``conn`` with the table locked against other writers until
        the caller's transaction ends (on SQLite its transaction holds the write lock from the start).

        For a change that must judge the whole table: a row lock would not stop a concurrent insert.
        """
        if conn.dialect.name == "postgresql":
            await conn.execute(text("LOCK TABLE permissions IN SHARE ROW EXCLUSIVE MODE"))
        rows = (await conn.execute(select(permissions).order_by(permissions.c.id))).all()
        return [permission_from_row(row) for row in rows]

    async def list_all(self) -> list[Permission]:
        async with reading(self._engine) as conn:
            rows = (await conn.execute(select(permissions).order_by(permissions.c.id))).all()
        return [permission_from_row(row) for row in rows]

    async def add_many(self, perms: Iterable[Permission], *, replace: bool = False) -> int:
        """Insert ``perms`` in one transaction (after deleting every row when ``replace``)."""
        rows = permission_rows(perms)
        async with transaction(self._engine) as conn:
            if replace:
                await conn.execute(delete(permissions))
            if rows:
                await conn.execute(permissions.insert(), rows)
        return len(rows)
