"""Restrictions in SQL (``SqlRestrictionRepository``) and their validation (§7.2, with IPv6 and ISO codes)."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import Row, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from identity.db import restrictions, utcnow
from identity.errors import ValidationFailed
from identity.models import (
    MAINTENANCE_DEFAULT_CODE,
    RESTRICTION_CATEGORIES,
    RESTRICTION_DEFAULT_CODES,
    RESTRICTION_SCOPES,
    RESTRICTION_STATES,
    Restriction,
)
from identity.storage import reading, transaction


def restriction_from_row(row: Row[Any]) -> Restriction:
    return Restriction(
        id=row.id,
        category=row.category,
        scope=row.scope,
        value=row.value,
        code=row.code,
        state=row.state,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def validate_restriction(
    category: str, scope: str, value: str, state: str = "enabled", code: int | None = None
) -> Restriction:
    """A valid :class:`Restriction` from raw fields, or :class:`ValidationFailed` with every key."""
    problems: list[str] = []
    category = (category or "").strip().lower()
    scope = (scope or "").strip().lower()
    state = (state or "enabled").strip().lower()
    value = (value or "").strip()
    if category not in RESTRICTION_CATEGORIES:
        problems.append("category.inclusion")
    if scope not in RESTRICTION_SCOPES:
        problems.append("scope.inclusion")
    if state not in RESTRICTION_STATES:
        problems.append("state.inclusion")
    if not value:
        problems.append("value.blank")
    elif len(value) > 64:
        problems.append("value.too_long")
    elif scope == "ip":
        try:
            value = str(ipaddress.ip_address(value))
        except ValueError:
            problems.append("value.invalid")
    elif scope == "ip_subnet":
        try:
            value = str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            problems.append("value.invalid")
    if code is not None and not (100 <= int(code) <= 599):
        problems.append("code.invalid")
    if problems:
        raise ValidationFailed(problems)
    if category == "whitelist" or code is None:
        code = MAINTENANCE_DEFAULT_CODE if category == "maintenance" and code is None else RESTRICTION_DEFAULT_CODES[scope]
    return Restriction(category=category, scope=scope, value=value, code=int(code), state=state)


class SqlRestrictionRepository:
    """Reads and writes the ``restrictions`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def list_all(self) -> list[Restriction]:
        async with reading(self._engine) as conn:
            rows = (await conn.execute(select(restrictions).order_by(restrictions.c.id))).all()
        return [restriction_from_row(row) for row in rows]

    async def add(self, restriction: Restriction) -> Restriction:
        """Insert a validated restriction; a duplicate (scope, category, value) raises ``Conflict('value.taken')``."""
        now = utcnow()
        async with transaction(self._engine, conflict_key="value.taken") as conn:
            result = await conn.execute(
                restrictions.insert()
                .values(
                    category=restriction.category,
                    scope=restriction.scope,
                    value=restriction.value,
                    code=restriction.code,
                    state=restriction.state,
                    created_at=now,
                    updated_at=now,
                )
                .returning(restrictions)
            )
            row = result.one()
        return restriction_from_row(row)

    async def delete(self, restriction_id: int) -> bool:
        async with transaction(self._engine) as conn:
            result = await conn.execute(delete(restrictions).where(restrictions.c.id == restriction_id))
        return result.rowcount == 1
