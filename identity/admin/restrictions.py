"""Admin changes to restrictions, and whitelink tokens (barong-behavior.md §7.2), for the admin API and the
``authz`` command alike.

Parameters are checked as Barong's API does (``admin.restriction.invalid_scope``, ``missing_value``...), the
restriction itself by :func:`identity.restrictions.validate_restriction` (``value.invalid``; IPv6 and ISO
codes accepted) — on update, the stored restriction merged with the changed fields.  A duplicate
(scope, category, value) is ``value.taken``.

Each change is written in one transaction with the admin activity recording it, then announced, so that
every running instance applies it within a second.  Saving an enabled blocklogin restriction that is new,
or was not an enabled blocklogin restriction with this scope and value before, then revokes the sessions
opened from the addresses it blocks (``on_blocklogin``); Barong wiped every session instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from identity.activities import SqlActivityRepository
from identity.admin.actor import Actor
from identity.admin.inputs import INTEGER, as_integer, choice, integer_param, text_param
from identity.changes import ChangePublisher
from identity.db import restrictions, utcnow
from identity.errors import RecordNotFound, ValidationFailed
from identity.models import RESTRICTION_CATEGORIES, RESTRICTION_SCOPES, RESTRICTION_STATES, Restriction
from identity.paging import Page, page_params
from identity.restrictions import restriction_from_row, validate_restriction
from identity.storage import reading, transaction
from identity.whitelinks import RedisWhitelinkTokens

PREFIX = "admin.restriction"
TOPIC = "restrictions"
RANGES = ("created", "updated")
#: The columns an admin sets (the code as ``validate_restriction`` assigns it).
SAVED = ("category", "scope", "value", "code", "state")
MAX_ID = 2**63 - 1
WHITELINK_UNITS = {"day": 86_400, "hour": 3_600}
WHITELINK_MAX = 30


@dataclass(frozen=True, slots=True)
class SavedRestriction:
    """A restriction just created or updated, and how many sessions its saving revoked (blocklogin)."""

    restriction: Restriction
    revoked_sessions: int = 0


def _record(restriction: Restriction) -> dict[str, Any]:
    """What an admin activity shows of a restriction."""
    return {
        "id": restriction.id,
        "category": restriction.category,
        "scope": restriction.scope,
        "value": restriction.value,
        "code": restriction.code,
        "state": restriction.state,
    }


def _moment(value: int, key: str, problems: list[str]) -> datetime | None:
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        problems.append(key)
        return None


def restriction_fields(params: dict[str, Any], *, partial: bool, problems: list[str]) -> dict[str, Any]:
    """The restriction fields among ``params``; every parameter problem appended to ``problems``.

    Scope, value and category are required unless ``partial`` (an update); state and code are optional.
    """
    fields: dict[str, Any] = {}
    scope = text_param(params, "scope", PREFIX, problems, required=not partial)
    value = text_param(params, "value", PREFIX, problems, required=not partial)
    category = text_param(params, "category", PREFIX, problems, required=not partial)
    state = text_param(params, "state", PREFIX, problems, required=False)
    code = integer_param(params, "code", PREFIX, problems, required=False, bound=INTEGER)
    chosen = {
        "scope": choice(scope, RESTRICTION_SCOPES, f"{PREFIX}.invalid_scope", problems),
        "category": choice(category, RESTRICTION_CATEGORIES, f"{PREFIX}.invalid_category", problems),
        "state": choice(state, RESTRICTION_STATES, f"{PREFIX}.invalid_state", problems),
        "value": value,
        "code": code,
    }
    fields.update({name: given for name, given in chosen.items() if given is not None})
    return fields


def _blocks_anew(before: Restriction | None, after: Restriction) -> bool:
    """Whether saving ``after`` (over ``before``) starts blocking logins from addresses not blocked so far."""
    if after.category != "blocklogin" or not after.enabled:
        return False
    if before is None or before.category != "blocklogin" or not before.enabled:
        return True
    return (before.scope, before.value) != (after.scope, after.value)


class RestrictionAdmin:
    """Lists, creates, updates and deletes restrictions, and hands out whitelink tokens."""

    def __init__(
        self,
        engine: AsyncEngine,
        changes: ChangePublisher,
        whitelinks: RedisWhitelinkTokens,
        on_blocklogin: Callable[[Restriction], Awaitable[int]],
    ) -> None:
        self._engine = engine
        self._changes = changes
        self._whitelinks = whitelinks
        self._on_blocklogin = on_blocklogin

    async def list(self, params: dict[str, Any]) -> tuple[list[Restriction], int, Page]:
        """One page of the restrictions in id order filtered by ``scope``, ``category`` and the time range
        (``range`` created or updated, ``from`` and ``to`` in epoch seconds, both inclusive); the total."""
        problems: list[str] = []
        wanted: dict[str, str | None] = {}
        for name, allowed in (("scope", RESTRICTION_SCOPES), ("category", RESTRICTION_CATEGORIES)):
            given = params.get(name)
            # A blank filter is no filter (a form's "any" choice).
            if given is not None and given != "":
                text = given if isinstance(given, str) else ""
                wanted[name] = choice(text.strip(), allowed, f"{PREFIX}.invalid_{name}", problems)
        time_range = params.get("range")
        if time_range is None or time_range == "":
            time_range = "created"
        if not isinstance(time_range, str) or time_range not in RANGES:
            problems.append(f"{PREFIX}.invalid_range")
            time_range = "created"
        bounds: dict[str, datetime | None] = {}
        for name in ("from", "to"):
            if params.get(name) is None or params.get(name) == "":
                continue
            epoch = integer_param(params, name, PREFIX, problems, required=False)
            if epoch is not None:
                bounds[name] = _moment(epoch, f"{PREFIX}.invalid_{name}", problems)
        page = page_params(params, problems)
        if problems:
            raise ValidationFailed(problems)

        column = restrictions.c.created_at if time_range == "created" else restrictions.c.updated_at
        conditions = [getattr(restrictions.c, name) == value for name, value in wanted.items()]
        if bounds.get("from") is not None:
            conditions.append(column >= bounds["from"])
        if bounds.get("to") is not None:
            conditions.append(column <= bounds["to"])
        async with reading(self._engine) as conn:
            total = int(
                await conn.scalar(select(func.count()).select_from(restrictions).where(*conditions)) or 0
            )
            query = (
                select(restrictions)
                .where(*conditions)
                .order_by(restrictions.c.id)
                .offset(page.offset)
                .limit(page.limit)
            )
            rows = (await conn.execute(query)).all() if total > page.offset else []
        return [restriction_from_row(row) for row in rows], total, page

    async def create(self, actor: Actor, params: dict[str, Any]) -> SavedRestriction:
        """A new restriction from ``scope, value, category`` (and ``state``, ``code``)."""
        problems: list[str] = []
        fields = restriction_fields(params, partial=False, problems=problems)
        if problems:
            raise ValidationFailed(problems)
        valid = validate_restriction(
            fields["category"],
            fields["scope"],
            fields["value"],
            fields.get("state", "enabled"),
            fields.get("code"),
        )
        values = {name: getattr(valid, name) for name in SAVED}
        now = utcnow()
        async with transaction(self._engine, conflict_key="value.taken") as conn:
            insert = (
                restrictions.insert().values(**values, created_at=now, updated_at=now).returning(restrictions)
            )
            row = (await conn.execute(insert)).one()
            created = restriction_from_row(row)
            activity = actor.activity(TOPIC, "create", data={"after": _record(created)})
            await SqlActivityRepository.add_in(conn, [activity])
        return await self._saved(None, created)

    async def update(self, actor: Actor, restriction_id: Any, params: dict[str, Any]) -> SavedRestriction:
        """Change any of scope, value, category, state and code of the restriction ``id``; the result is
        validated as a whole (a new scope checks the stored value).  Without any field nothing changes."""
        problems: list[str] = []
        ident = integer_param({"id": restriction_id}, "id", PREFIX, problems, required=True)
        fields = restriction_fields(params, partial=True, problems=problems)
        if problems:
            raise ValidationFailed(problems)
        assert ident is not None
        async with transaction(self._engine, conflict_key="value.taken") as conn:
            before = await self._get(conn, ident)
            if not fields:
                return SavedRestriction(before)
            merged = {**_record(before), **fields}
            valid = validate_restriction(
                merged["category"], merged["scope"], merged["value"], merged["state"], merged["code"]
            )
            now = utcnow()
            changes = {name: getattr(valid, name) for name in SAVED}
            await conn.execute(
                update(restrictions).where(restrictions.c.id == ident).values(**changes, updated_at=now)
            )
            after = Restriction(**changes, id=ident, created_at=before.created_at, updated_at=now)
            activity = actor.activity(
                TOPIC, "update", data={"before": _record(before), "after": _record(after)}
            )
            await SqlActivityRepository.add_in(conn, [activity])
        return await self._saved(before, after)

    async def delete(self, actor: Actor, restriction_id: Any) -> Restriction:
        """Delete the restriction ``id``; returns what it was.  Sessions are left alone."""
        problems: list[str] = []
        ident = integer_param({"id": restriction_id}, "id", PREFIX, problems, required=True)
        if problems:
            raise ValidationFailed(problems)
        assert ident is not None
        async with transaction(self._engine) as conn:
            before = await self._get(conn, ident)
            await conn.execute(delete(restrictions).where(restrictions.c.id == ident))
            activity = actor.activity(TOPIC, "delete", data={"before": _record(before)})
            await SqlActivityRepository.add_in(conn, [activity])
        await self._changes.restrictions_changed()
        return before

    async def whitelink(self, actor: Actor, params: dict[str, Any]) -> str:
        """A whitelink token living ``expire_time`` (1..30, default 1) ``range`` units (day or hour, default
        day).  Whoever holds it may whitelist their address, so its creation is recorded (without the
        token: a bearer secret) before the token exists."""
        problems: list[str] = []
        expire_time = params.get("expire_time")
        amount = 1 if expire_time is None or expire_time == "" else as_integer(expire_time)
        if amount is None or not 1 <= amount <= WHITELINK_MAX:
            problems.append(f"{PREFIX}.invalid_expire")
        unit = params.get("range")
        if unit is None or unit == "":
            unit = "day"
        if not isinstance(unit, str) or unit not in WHITELINK_UNITS:
            problems.append(f"{PREFIX}.invalid_range")
        if problems:
            raise ValidationFailed(problems)
        assert amount is not None
        activity = actor.activity(TOPIC, "create", data={"whitelink": {"expire_time": amount, "range": unit}})
        async with transaction(self._engine) as conn:
            await SqlActivityRepository.add_in(conn, [activity])
        return await self._whitelinks.create(amount * WHITELINK_UNITS[unit])

    async def _saved(self, before: Restriction | None, after: Restriction) -> SavedRestriction:
        """After the commit: announce the change (new logins from the blocked addresses are refused), then
        revoke the sessions a new blocklogin restriction blocks."""
        await self._changes.restrictions_changed()
        revoked = await self._on_blocklogin(after) if _blocks_anew(before, after) else 0
        return SavedRestriction(after, revoked)

    @staticmethod
    async def _get(conn: AsyncConnection, ident: int) -> Restriction:
        row = None
        if 1 <= ident <= MAX_ID:
            # Locked until the transaction ends: a concurrent change waits, then merges onto what this one wrote.
            query = select(restrictions).where(restrictions.c.id == ident).with_for_update()
            row = (await conn.execute(query)).one_or_none()
        if row is None:
            raise RecordNotFound(f"{PREFIX}.doesnt_exist")
        return restriction_from_row(row)
