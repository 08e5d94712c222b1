"""Admin changes to users' labels (barong-behavior.md §4.7, §8.3; seed 2.4 ``/admin/users/labels``).

Admins set labels of either scope.  Keys and values are normalised and checked as the user's own labels
are (``identity/labels.py``: 3–255 characters of ``[a-z0-9_-]``); a label may carry a description of at
most 255 characters.  A private label moves the user's level and state (``SqlUserRepository.put_label_in``),
so a change is followed by what follows a state change: the keys and service accounts are updated and
every instance is told (``UserChangeEffects``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from identity.account_rules import AccountRules
from identity.activities import SqlActivityRepository
from identity.admin.actor import Actor
from identity.admin.inputs import text_param
from identity.admin.user_changes import UserChangeEffects, check_target, locked_target
from identity.admin.user_queries import UserView, as_boolean, users_with_label
from identity.db import labels
from identity.errors import Conflict, RecordNotFound, ValidationFailed
from identity.labels import label_from_row, label_text_problems, normalise_label_text
from identity.models import Label, User
from identity.paging import Page, page_params
from identity.storage import reading, transaction
from identity.users import SqlUserRepository

PREFIX = "admin.user"
TOPIC = "users"
SCOPES = ("public", "private")
DOESNT_EXIST = "admin.label.doesnt_exist"
MAX_DESCRIPTION = 255


def _label_params(params: dict[str, Any], *, value: bool, scope_required: bool) -> dict[str, Any]:
    """``uid``, ``key`` (normalised), ``scope``, and — with ``value`` — ``value`` (normalised) and
    ``description``: every parameter and format problem reported at once."""
    problems: list[str] = []
    found: dict[str, Any] = {
        "uid": text_param(params, "uid", PREFIX, problems, required=True),
        "key": text_param(params, "key", PREFIX, problems, required=True),
        "scope": text_param(params, "scope", PREFIX, problems, required=scope_required),
    }
    if value:
        found["value"] = text_param(params, "value", PREFIX, problems, required=True)
        found["description"] = text_param(params, "description", PREFIX, problems, required=False)
    for name in ("key", "value"):
        if found.get(name) is not None:
            found[name] = normalise_label_text(found[name])
            problems.extend(label_text_problems(name, found[name]))
    if found["scope"] is None and not scope_required:
        found["scope"] = "public"
    if found["scope"] is not None and found["scope"] not in SCOPES:
        problems.append("scope.inclusion")
    if found.get("description") is not None and len(found["description"]) > MAX_DESCRIPTION:
        problems.append("description.too_long")
    if problems:
        raise ValidationFailed(problems)
    return found


async def _find(conn: AsyncConnection, user_id: int, key: str, scope: str) -> Label | None:
    query = select(labels).where(labels.c.user_id == user_id, labels.c.key == key, labels.c.scope == scope)
    row = (await conn.execute(query)).first()
    return label_from_row(row) if row else None


class LabelAdmin:
    """What admins do with users' labels."""

    def __init__(self, engine: AsyncEngine, effects: UserChangeEffects, rules: AccountRules) -> None:
        self._engine = engine
        self._effects = effects
        self._rules = rules

    async def users_with(self, params: dict[str, Any]) -> tuple[list[UserView], int, Page]:
        """``GET /users/labels?key&value``: a page of the users holding that label."""
        problems: list[str] = []
        key = text_param(params, "key", PREFIX, problems, required=True)
        value = text_param(params, "value", PREFIX, problems, required=True)
        page = page_params(params, problems)
        if problems or key is None or value is None:
            raise ValidationFailed(problems)
        async with reading(self._engine) as conn:
            found, total = await users_with_label(
                conn, normalise_label_text(key), normalise_label_text(value), page
            )
        return found, total, page

    async def private_counts(self) -> list[tuple[str, str, int]]:
        """``GET /users/labels/list``: every private ``(key, value)`` in use and how many users hold it."""
        query = (
            select(labels.c.key, labels.c.value, func.count())
            .where(labels.c.scope == "private")
            .group_by(labels.c.key, labels.c.value)
            .order_by(labels.c.key, labels.c.value)
        )
        async with reading(self._engine) as conn:
            return [(key, value, int(count)) for key, value, count in (await conn.execute(query)).all()]

    async def create(self, actor: Actor, params: dict[str, Any]) -> Label:
        """``POST /users/labels``: a new label (``scope`` public unless given); ``key.taken`` if the user has
        one of that key and scope."""
        wanted = _label_params(params, value=True, scope_required=False)
        return await self._write(actor, wanted, create=True, replace=False)

    async def update(self, actor: Actor, params: dict[str, Any], *, replace_param: bool) -> Label:
        """``POST /users/labels/update`` (``replace_param``: ``replace``, default true, creates a missing label)
        and ``PUT /users/labels`` (a missing label is 404 ``admin.label.doesnt_exist``)."""
        wanted = _label_params(params, value=True, scope_required=True)
        replace = False
        if replace_param:
            replace = True
            if params.get("replace") not in (None, ""):
                parsed = as_boolean(params["replace"])
                if parsed is None:
                    raise ValidationFailed(f"{PREFIX}.non_boolean_replace")
                replace = parsed
        return await self._write(actor, wanted, create=False, replace=replace)

    async def delete(self, actor: Actor, params: dict[str, Any]) -> None:
        """``DELETE /users/labels`` with ``uid``, ``key`` and ``scope``."""
        wanted = _label_params(params, value=False, scope_required=True)
        async with transaction(self._engine) as conn:
            before = await locked_target(conn, wanted["uid"])
            check_target(actor, before, himself=False)
            if not await SqlUserRepository.delete_label_in(
                conn, before.id, wanted["key"], wanted["scope"], self._rules
            ):
                raise RecordNotFound(DOESNT_EXIST)
            after = await self._record(conn, actor, before, "delete", wanted)
        await self._effects.apply(before, after)

    async def _write(self, actor: Actor, wanted: dict[str, Any], *, create: bool, replace: bool) -> Label:
        uid, key, scope = wanted["uid"], wanted["key"], wanted["scope"]
        async with transaction(self._engine, conflict_key="key.taken") as conn:
            before = await locked_target(conn, uid)
            check_target(actor, before, himself=False)
            existing = await _find(conn, before.id, key, scope)
            if create and existing is not None:
                raise Conflict("key.taken")
            if not create and existing is None and not replace:
                raise RecordNotFound(DOESNT_EXIST)
            await SqlUserRepository.put_label_in(
                conn, before.id, key, wanted["value"], scope, self._rules, wanted["description"]
            )
            after = await self._record(
                conn, actor, before, "create" if existing is None else "update", wanted
            )
            label = await _find(conn, before.id, key, scope)
        assert label is not None
        await self._effects.apply(before, after)
        return label

    @staticmethod
    async def _record(
        conn: AsyncConnection, actor: Actor, before: User, action: str, wanted: dict[str, Any]
    ) -> User:
        data = {"label": {name: wanted[name] for name in ("key", "value", "scope") if name in wanted}}
        await SqlActivityRepository.add_in(
            conn, [actor.activity(TOPIC, action, target_uid=before.uid, data=data)]
        )
        after = await SqlUserRepository.get_in(conn, before.uid)
        assert after is not None
        return after
