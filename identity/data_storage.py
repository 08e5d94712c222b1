"""Titled pieces of additional user data (Barong's ``data_storages``, seed 2.6 ``/resource/data_storage``).

``data`` is a JSON object, as text, of at most 5120 characters (Barong's limit); a title is 1–64
characters and names at most one storage of a user.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from identity.db import data_storages, utcnow
from identity.errors import ValidationFailed
from identity.input_limits import too_deep
from identity.models import DataStorage
from identity.storage import reading, transaction

MAX_TITLE = 64
MAX_DATA = 5120


def validate_data_storage(title: str, data: Any) -> tuple[str, str]:
    """The title (blanks squished) and the data as JSON text; every problem reported at once."""
    problems: list[str] = []
    title = " ".join(title.split())
    if len(title) > MAX_TITLE:
        problems.append("title.too_long")
    if isinstance(data, dict):
        data = orjson.dumps(data).decode()  # an object in a JSON body
    if not isinstance(data, str):
        problems.append("data.invalid_format")
    elif len(data) > MAX_DATA:
        problems.append("data.too_long")
    else:
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            problems.append("data.invalid_format")
        elif too_deep(parsed):
            problems.append("data.too_deep")
    if problems:
        raise ValidationFailed(problems)
    return title, data


def _storage(row: Row[Any]) -> DataStorage:
    return DataStorage(
        id=row.id,
        user_id=row.user_id,
        title=row.title,
        data=row.data,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlDataStorageRepository:
    """Reads and writes the ``data_storages`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def for_user(self, user_id: int) -> list[DataStorage]:
        async with reading(self._engine) as conn:
            return await self.for_user_in(conn, user_id)

    @staticmethod
    async def for_user_in(conn: AsyncConnection, user_id: int) -> list[DataStorage]:
        query = select(data_storages).where(data_storages.c.user_id == user_id).order_by(data_storages.c.id)
        return [_storage(row) for row in (await conn.execute(query)).all()]

    async def create(self, user_id: int, title: str, data: str) -> DataStorage:
        """Store ``data`` under ``title``; a title the user used already is ``422 title.taken``."""
        now = utcnow()
        async with transaction(self._engine, conflict_key="title.taken") as conn:
            result = await conn.execute(
                data_storages.insert().values(
                    user_id=user_id, title=title, data=data, created_at=now, updated_at=now
                )
            )
            row = (
                await conn.execute(
                    select(data_storages).where(data_storages.c.id == result.inserted_primary_key[0])
                )
            ).one()
        return _storage(row)
