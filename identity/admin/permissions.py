"""Admin changes to permissions (barong-behavior.md §7.1), for the admin API and the ``authz`` command alike.

Create and update validate the same way (decisions.md: Barong's update skipped validation): the role must
already have a permission, the verb is one of GET POST DELETE PUT HEAD PATCH ALL and the action one of
ACCEPT DROP AUDIT (any case; stored upper-case).  A path is a prefix of the request path as the decision
endpoint sees it, which never starts with "/" and holds no whitespace: such a path could never match, so
it is refused (``admin.permissions.invalid_path``) where Barong stored it.

Each change is written in one transaction with the admin activity recording it, then announced, so that
every running instance reloads its permissions within a second.

A change after which no superadmin could reach the admin API's permissions, where one could before, is
refused (``admin.permission.last_superadmin_access``): one click in the console could otherwise lock every
superadmin out.  Whether a table lets them is the decision's own answer, given by the composition root
(``authz/superadmin_access.py``); the change is judged against the whole table, locked until it is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from identity.activities import SqlActivityRepository
from identity.admin.actor import Actor
from identity.admin.inputs import choice, integer_param, text_param
from identity.changes import ChangePublisher
from identity.db import permissions, utcnow
from identity.errors import LastSuperadminAccess, RecordNotFound, ValidationFailed
from identity.models import ACTIONS, VERBS, Permission
from identity.paging import Page
from identity.permissions import SqlPermissionRepository, permission_from_row, permission_rows
from identity.storage import reading, transaction

PREFIX = "admin.permission"
FIELDS = ("role", "verb", "path", "action", "topic")
#: Column widths of the ``permissions`` table.
MAX_LENGTH = {"role": 64, "path": 255, "topic": 64}
MAX_ID = 2**63 - 1
TOPIC = "permissions"

#: Whether a permissions table (its rows in table order) lets a superadmin reach the admin API's permissions.
AdminReach = Callable[[Sequence[Permission]], bool]


def _record(permission: Permission) -> dict[str, Any]:
    """What an admin activity shows of a permission."""
    return {
        "id": permission.id,
        "role": permission.role,
        "verb": permission.verb,
        "path": permission.path,
        "action": permission.action,
        "topic": permission.topic,
    }


def permission_fields(params: dict[str, Any], *, partial: bool, problems: list[str]) -> dict[str, str | None]:
    """The permission fields among ``params``, normalised; every problem appended to ``problems``.

    ``partial`` (an update): each field is optional.  Otherwise role, verb, path and action are required.
    ``topic`` is always optional; blank means none.
    """
    fields: dict[str, str | None] = {}
    for name in ("role", "verb", "path", "action"):
        value = text_param(params, name, PREFIX, problems, required=not partial)
        if value is not None:
            fields[name] = value
    for name, allowed in (("verb", VERBS), ("action", ACTIONS)):
        if name in fields:
            lower = tuple(word.lower() for word in allowed)
            chosen = choice(fields.pop(name), lower, f"admin.permissions.invalid_{name}", problems)
            if chosen is not None:
                fields[name] = chosen.upper()
    path = fields.get("path")
    if path is not None and (path.startswith("/") or any(ch.isspace() for ch in path)):
        problems.append("admin.permissions.invalid_path")
        del fields["path"]
    topic = params.get("topic")
    if topic is not None:
        if isinstance(topic, bool) or not isinstance(topic, (str, int)):
            problems.append(f"{PREFIX}.invalid_topic")
        else:
            fields["topic"] = str(topic).strip() or None
    for name, limit in MAX_LENGTH.items():
        value = fields.get(name)
        if value is not None and len(value) > limit:
            problems.append(f"{name}.too_long")
            del fields[name]
    return fields


def permission_id(value: Any, problems: list[str]) -> int | None:
    """The ``id`` parameter of an update or a deletion."""
    return integer_param({"id": value}, "id", PREFIX, problems, required=True)


def _row_key(p: Permission) -> tuple[str, str, str, str, str | None]:
    """What makes two permissions the same rule (an import adds a rule once)."""
    return (p.role, p.verb, p.path, p.action, p.topic)


class PermissionAdmin:
    """Lists, creates, updates and deletes permissions; every change recorded and announced.

    ``reaches_admin_api`` answers for a proposed table; a change that turns it from yes to no is refused.
    """

    def __init__(self, engine: AsyncEngine, changes: ChangePublisher, reaches_admin_api: AdminReach) -> None:
        self._engine = engine
        self._changes = changes
        self._reaches_admin_api = reaches_admin_api

    async def list(self, page: Page) -> tuple[list[Permission], int]:
        """One page of the permissions in id order, and how many there are."""
        async with reading(self._engine) as conn:
            total = int(await conn.scalar(select(func.count()).select_from(permissions)) or 0)
            query = select(permissions).order_by(permissions.c.id).offset(page.offset).limit(page.limit)
            rows = (await conn.execute(query)).all() if total > page.offset else []
        return [permission_from_row(row) for row in rows], total

    async def create(self, actor: Actor, params: dict[str, Any]) -> Permission:
        """A new permission from ``role, verb, path, action`` (and ``topic``)."""
        problems: list[str] = []
        fields = permission_fields(params, partial=False, problems=problems)
        if problems:
            raise ValidationFailed(problems)
        now = utcnow()
        async with transaction(self._engine) as conn:
            current = await SqlPermissionRepository.locked_rows_in(conn)
            await self._check_role(conn, str(fields["role"]))
            role, verb, path, action = (str(fields[name]) for name in FIELDS[:4])
            created_row = Permission(role, verb, path, action, fields.get("topic"))
            self._refuse_lockout(current, [*current, created_row])
            row = (
                await conn.execute(
                    permissions.insert()
                    .values(**{name: fields.get(name) for name in FIELDS}, created_at=now, updated_at=now)
                    .returning(permissions)
                )
            ).one()
            created = permission_from_row(row)
            activity = actor.activity(TOPIC, "create", data={"after": _record(created)})
            await SqlActivityRepository.add_in(conn, [activity])
        await self._changes.permissions_changed()
        return created

    async def update(self, actor: Actor, permission_id_value: Any, params: dict[str, Any]) -> Permission:
        """Change any of role, verb, path, action and topic of the permission ``id``.

        Without any of them nothing changes (and nothing is recorded).
        """
        problems: list[str] = []
        ident = permission_id(permission_id_value, problems)
        fields = permission_fields(params, partial=True, problems=problems)
        if problems:
            raise ValidationFailed(problems)
        assert ident is not None
        async with transaction(self._engine) as conn:
            current = await SqlPermissionRepository.locked_rows_in(conn)
            before = await self._get(conn, ident)
            if not fields:
                return before
            if "role" in fields and fields["role"] != before.role:
                await self._check_role(conn, str(fields["role"]))
            changed = [replace(p, **fields) if p.id == ident else p for p in current]  # type: ignore[arg-type]
            self._refuse_lockout(current, changed)
            now = utcnow()
            await conn.execute(
                update(permissions).where(permissions.c.id == ident).values(**fields, updated_at=now)
            )
            after = replace(before, **fields, updated_at=now)  # type: ignore[arg-type]
            activity = actor.activity(
                TOPIC, "update", data={"before": _record(before), "after": _record(after)}
            )
            await SqlActivityRepository.add_in(conn, [activity])
        await self._changes.permissions_changed()
        return after

    async def delete(self, actor: Actor, permission_id_value: Any) -> Permission:
        """Delete the permission ``id``; returns what it was."""
        problems: list[str] = []
        ident = permission_id(permission_id_value, problems)
        if problems:
            raise ValidationFailed(problems)
        assert ident is not None
        async with transaction(self._engine) as conn:
            current = await SqlPermissionRepository.locked_rows_in(conn)
            before = await self._get(conn, ident)
            self._refuse_lockout(current, [p for p in current if p.id != ident])
            await conn.execute(delete(permissions).where(permissions.c.id == ident))
            await SqlActivityRepository.add_in(
                conn, [actor.activity(TOPIC, "delete", data={"before": _record(before)})]
            )
        await self._changes.permissions_changed()
        return before

    async def import_rows(self, perms: Sequence[Permission], *, replace_all: bool) -> int:
        """Add the rows of ``perms`` not stored yet (each once), or with ``replace_all`` make them the whole
        table; returns how many were written.

        ``authz permissions import``: announced like every change, and refused like them when it would lock
        every superadmin out; not recorded as an admin activity (a file loaded, not an admin's edit).
        """
        async with transaction(self._engine) as conn:
            current = await SqlPermissionRepository.locked_rows_in(conn)
            stored = set() if replace_all else {_row_key(p) for p in current}
            fresh = []
            for perm in perms:
                if _row_key(perm) not in stored:
                    stored.add(_row_key(perm))
                    fresh.append(perm)
            self._refuse_lockout(current, fresh if replace_all else [*current, *fresh])
            if replace_all:
                await conn.execute(delete(permissions))
            if fresh:
                await conn.execute(permissions.insert(), permission_rows(fresh))
        await self._changes.permissions_changed()
        return len(fresh)

    def _refuse_lockout(self, current: Sequence[Permission], proposed: Sequence[Permission]) -> None:
        """Refuse ``proposed`` when it keeps every superadmin from the admin API's permissions and ``current``
        did not.  A table that already keeps them out (a policy without superadmins) takes any change."""
        if not self._reaches_admin_api(proposed) and self._reaches_admin_api(current):
            raise LastSuperadminAccess()

    @staticmethod
    async def _get(conn: AsyncConnection, ident: int) -> Permission:
        row = None
        if 1 <= ident <= MAX_ID:
            # Locked until the transaction ends: a concurrent change waits, then reads what this one wrote.
            query = select(permissions).where(permissions.c.id == ident).with_for_update()
            row = (await conn.execute(query)).one_or_none()
        if row is None:
            raise RecordNotFound(f"{PREFIX}.doesnt_exist")
        return permission_from_row(row)

    @staticmethod
    async def _check_role(conn: AsyncConnection, role: str) -> None:
        """Barong: a role exists when some permission names it."""
        if not await SqlPermissionRepository.has_role_in(conn, role):
            raise ValidationFailed(f"{PREFIX}.role_doesnt_exist")
