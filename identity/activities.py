"""The audit trail (``SqlActivityRepository``): user and admin activities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from identity.db import activities, utcnow
from identity.models import Activity
from identity.storage import reading, transaction


def activity_from_row(row: Row[Any]) -> Activity:
    return Activity(
        id=row.id,
        user_id=row.user_id,
        target_uid=row.target_uid,
        category=row.category,
        user_ip=row.user_ip,
        user_ip_country=row.user_ip_country,
        user_agent=row.user_agent,
        topic=row.topic,
        action=row.action,
        result=row.result,
        data=row.data,
        created_at=row.created_at,
    )


@dataclass(frozen=True, slots=True)
class ActivityFilter:
    """Which of a user's activities to list: a topic (None for all), a result, and a time range
    (``since`` inclusive, ``until`` exclusive)."""

    topic: str | None = None
    result: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class SqlActivityRepository:
    """Appends to and reads the ``activities`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add_many(self, entries: Sequence[Activity]) -> None:
        """Insert ``entries`` in one transaction. Entries without a user agent are dropped, as Barong does."""
        if any(a.user_agent and a.user_ip for a in entries):
            async with transaction(self._engine) as conn:
                await self.add_in(conn, entries)

    @staticmethod
    async def add_in(conn: AsyncConnection, entries: Sequence[Activity]) -> None:
        """Insert ``entries`` on ``conn``, inside the caller's transaction (an admin change and its record
        commit together)."""
        rows = [
            dict(
                user_id=a.user_id,
                target_uid=a.target_uid,
                category=a.category,
                user_ip=a.user_ip,
                user_ip_country=a.user_ip_country,
                user_agent=a.user_agent,
                topic=a.topic,
                action=a.action,
                result=a.result,
                data=a.data,
                created_at=a.created_at or utcnow(),
            )
            for a in entries
            if a.user_agent and a.user_ip
        ]
        if rows:
            await conn.execute(activities.insert(), rows)

    async def add(self, entry: Activity) -> None:
        await self.add_many([entry])

    async def list(self, *, user_id: int | None = None, category: str | None = None) -> list[Activity]:
        query = select(activities).order_by(activities.c.id)
        if user_id is not None:
            query = query.where(activities.c.user_id == user_id)
        if category is not None:
            query = query.where(activities.c.category == category)
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [activity_from_row(row) for row in rows]

    async def user_page(
        self, user_id: int, wanted: ActivityFilter, *, offset: int = 0, limit: int = 100
    ) -> tuple[list[Activity], int]:
        """One page of the user-category activities of ``user_id`` matching ``wanted``, newest first, and
        how many match in all."""
        conditions = [activities.c.user_id == user_id, activities.c.category == "user"]
        if wanted.topic is not None:
            conditions.append(activities.c.topic == wanted.topic)
        if wanted.result is not None:
            conditions.append(activities.c.result == wanted.result)
        if wanted.since is not None:
            conditions.append(activities.c.created_at >= wanted.since)
        if wanted.until is not None:
            conditions.append(activities.c.created_at < wanted.until)
        query = (
            select(activities)
            .where(*conditions)
            .order_by(activities.c.created_at.desc(), activities.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        async with reading(self._engine) as conn:
            total = int(
                await conn.scalar(select(func.count()).select_from(activities).where(*conditions)) or 0
            )
            rows = (await conn.execute(query)).all() if total > offset else []
        return [activity_from_row(row) for row in rows], total
