"""User labels and the levels table in SQL (``SqlLabelRepository``, ``SqlLevelRepository``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from identity.db import labels, levels, utcnow
from identity.models import Label, Level
from identity.storage import reading


def _label(row: Row[Any]) -> Label:
    return Label(
        key=row.key,
        value=row.value,
        scope=row.scope,
        user_id=row.user_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlLabelRepository:
    """Reads and writes the ``labels`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def for_user(self, user_id: int) -> list[Label]:
        async with reading(self._engine) as conn:
            return await self.for_user_in(conn, user_id)

    @staticmethod
    async def for_user_in(conn: AsyncConnection, user_id: int) -> list[Label]:
        """The user's labels, read on ``conn`` (inside the caller's transaction)."""
        query = select(labels).where(labels.c.user_id == user_id).order_by(labels.c.id)
        return [_label(row) for row in (await conn.execute(query)).all()]

    @staticmethod
    async def put_in(conn: AsyncConnection, user_id: int, key: str, value: str, scope: str) -> None:
        """Create or overwrite the (user, key, scope) label on ``conn``."""
        now = utcnow()
        result = await conn.execute(
            update(labels)
            .where(labels.c.user_id == user_id, labels.c.key == key, labels.c.scope == scope)
            .values(value=value, updated_at=now)
        )
        if result.rowcount == 0:
            await conn.execute(
                labels.insert().values(
                    user_id=user_id, key=key, value=value, scope=scope, created_at=now, updated_at=now
                )
            )


class SqlLevelRepository:
    """Reads the ``levels`` table (seeded by the migrations with Barong's three levels)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def list_all(self) -> list[Level]:
        async with reading(self._engine) as conn:
            return await self.list_in(conn)

    @staticmethod
    async def list_in(conn: AsyncConnection) -> list[Level]:
        rows = (await conn.execute(select(levels).order_by(levels.c.id))).all()
        return [Level(id=row.id, key=row.key, value=row.value, description=row.description) for row in rows]
