"""User labels and the levels table in SQL (``SqlLabelRepository``, ``SqlLevelRepository``), and the
public labels a user manages itself (``PublicLabels``, barong-behavior.md §4.6–4.7)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Row, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from identity.changes import ChangePublisher
from identity.db import labels, levels, utcnow
from identity.errors import BadRequest, RecordNotFound, ValidationFailed
from identity.models import LABEL_TEXT_MAX, LABEL_TEXT_MIN, Label, Level, User
from identity.storage import reading, transaction

PUBLIC = "public"
PRIVATE_KEY = "resource.labels.private"


def label_from_row(row: Row[Any]) -> Label:
    return Label(
        key=row.key,
        value=row.value,
        scope=row.scope,
        user_id=row.user_id,
        description=row.description,
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
        return [label_from_row(row) for row in (await conn.execute(query)).all()]

    @staticmethod
    async def put_in(
        conn: AsyncConnection, user_id: int, key: str, value: str, scope: str, description: str | None = None
    ) -> None:
        """Create or overwrite the (user, key, scope) label on ``conn`` (a None description keeps the one
        there is)."""
        now = utcnow()
        values: dict[str, Any] = {"value": value, "updated_at": now}
        if description is not None:
            values["description"] = description
        result = await conn.execute(
            update(labels)
            .where(labels.c.user_id == user_id, labels.c.key == key, labels.c.scope == scope)
            .values(**values)
        )
        if result.rowcount == 0:
            await conn.execute(
                labels.insert().values(
                    user_id=user_id,
                    key=key,
                    value=value,
                    scope=scope,
                    description=description,
                    created_at=now,
                    updated_at=now,
                )
            )

    @staticmethod
    async def delete_in(conn: AsyncConnection, user_id: int, key: str, scope: str) -> bool:
        """Remove the (user, key, scope) label on ``conn``; True when there was one."""
        result = await conn.execute(
            delete(labels).where(labels.c.user_id == user_id, labels.c.key == key, labels.c.scope == scope)
        )
        return result.rowcount > 0


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


#: Label keys and values after normalisation (§4.7).
_LABEL_TEXT = re.compile(r"[a-z0-9_-]+")


def normalise_label_text(text: str) -> str:
    """Barong's ``downcase`` and ``squish``: lower case, outer blanks gone, inner runs of blanks as one."""
    return " ".join(text.split()).lower()


def label_text_problems(field: str, text: str) -> list[str]:
    """``<field>.too_short`` / ``too_long`` / ``invalid``: every rule a normalised key or value breaks."""
    problems: list[str] = []
    if len(text) < LABEL_TEXT_MIN:
        problems.append(f"{field}.too_short")
    elif len(text) > LABEL_TEXT_MAX:
        problems.append(f"{field}.too_long")
    if not _LABEL_TEXT.fullmatch(text):
        problems.append(f"{field}.invalid")
    return problems


class PublicLabels:
    """What a user may do with its own labels: the public ones only (§4.6).

    Public labels do not move the user's state or level (only private ones do, §4.7), but they are part of
    the user as the decision endpoint caches it, so every write is announced.
    """

    def __init__(self, engine: AsyncEngine, changes: ChangePublisher) -> None:
        self._engine = engine
        self._changes = changes

    async def of_user(self, user: User, *, descending: bool = False) -> list[Label]:
        """The user's public labels by creation time, oldest first unless ``descending``."""
        order = (
            (labels.c.created_at.desc(), labels.c.id.desc())
            if descending
            else (labels.c.created_at, labels.c.id)
        )
        query = select(labels).where(labels.c.user_id == user.id, labels.c.scope == PUBLIC).order_by(*order)
        async with reading(self._engine) as conn:
            return [label_from_row(row) for row in (await conn.execute(query)).all()]

    async def get(self, user: User, key: str) -> Label:
        """The public label ``key``; 400 ``resource.labels.private`` when the user has it only as private."""
        key = normalise_label_text(key)
        async with reading(self._engine) as conn:
            found = await self._find(conn, user.id, key)
            if found is None:
                await self._missing(conn, user.id, key)
        assert found is not None
        return found

    async def create(self, user: User, key: str, value: str) -> Label:
        key, value = normalise_label_text(key), normalise_label_text(value)
        problems = label_text_problems("key", key) + label_text_problems("value", value)
        if problems:
            raise ValidationFailed(problems)
        now = utcnow()
        async with transaction(self._engine, conflict_key="key.taken") as conn:
            # A public label beside a private one of the same key would make ``/labels/{key}`` ambiguous.
            if await self._find(conn, user.id, key) is None and await self._private(conn, user.id, key):
                raise BadRequest(PRIVATE_KEY)
            await conn.execute(
                labels.insert().values(
                    user_id=user.id, key=key, value=value, scope=PUBLIC, created_at=now, updated_at=now
                )
            )
            created = await self._find(conn, user.id, key)
        assert created is not None
        await self._changes.user_changed(user.uid)
        return created

    async def update(self, user: User, key: str, value: str) -> Label:
        key, value = normalise_label_text(key), normalise_label_text(value)
        async with transaction(self._engine) as conn:
            if await self._find(conn, user.id, key) is None:
                await self._missing(conn, user.id, key)
            problems = label_text_problems("value", value)  # after the lookup: an unknown key is 404 first
            if problems:
                raise ValidationFailed(problems)
            await conn.execute(
                update(labels)
                .where(labels.c.user_id == user.id, labels.c.key == key, labels.c.scope == PUBLIC)
                .values(value=value, updated_at=utcnow())
            )
            updated = await self._find(conn, user.id, key)
        if updated is None:  # deleted meanwhile
            raise RecordNotFound()
        await self._changes.user_changed(user.uid)
        return updated

    async def delete(self, user: User, key: str) -> None:
        key = normalise_label_text(key)
        async with transaction(self._engine) as conn:
            if not await SqlLabelRepository.delete_in(conn, user.id, key, PUBLIC):
                await self._missing(conn, user.id, key)
        await self._changes.user_changed(user.uid)

    @staticmethod
    async def _find(conn: AsyncConnection, user_id: int, key: str) -> Label | None:
        query = select(labels).where(
            labels.c.user_id == user_id, labels.c.key == key, labels.c.scope == PUBLIC
        )
        row = (await conn.execute(query)).first()
        return label_from_row(row) if row else None

    @staticmethod
    async def _private(conn: AsyncConnection, user_id: int, key: str) -> bool:
        query = select(labels.c.id).where(
            labels.c.user_id == user_id, labels.c.key == key, labels.c.scope == "private"
        )
        return await conn.scalar(query) is not None

    @classmethod
    async def _missing(cls, conn: AsyncConnection, user_id: int, key: str) -> None:
        """Raise why there is no public label ``key``: it is private (400), or there is none (404)."""
        if await cls._private(conn, user_id, key):
            raise BadRequest(PRIVATE_KEY)
        raise RecordNotFound()
