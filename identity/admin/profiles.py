"""Admin reads and changes of users' KYC profiles (seed 2.4 ``/admin/profiles``; profile states of seed 2.6).

- ``list``: every profile, a page at a time, oldest first.
- ``update``: the fields of the user's (latest) profile and its ``state`` (drafted, submitted, verified,
  rejected), whatever state it is in — this is how an admin verifies or rejects a profile.
- ``create``: a profile for a user who has none, ``submitted`` (as Barong's admin creation).

Fields are validated as the user's own (``identity/profiles.py``) with ``admin.profile`` parameter keys; a
non-superadmin may not touch a superadmin's profile (``admin.profiles.superadmin_change``).  The admin
activity names the fields changed, not their values (personal data stays out of the audit trail).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from identity.activities import SqlActivityRepository
from identity.admin.actor import Actor
from identity.admin.inputs import text_param
from identity.admin.user_changes import check_target, locked_target
from identity.db import profiles, users, utcnow
from identity.errors import AlreadyExists, RecordNotFound, ValidationFailed
from identity.models import PROFILE_STATES, Profile, User
from identity.paging import Page, page_params
from identity.profiles import ProfileExists, SqlProfileRepository, profile_from_row, validate_profile
from identity.storage import reading, transaction

PREFIX = "admin.profile"
TOPIC = "profiles"
SUPERADMIN_CHANGE = "admin.profiles.superadmin_change"
#: The state of a profile an admin creates (Barong: ``submitted``, the admin being its author).
CREATED_STATE = "submitted"


def _change(params: dict[str, Any], today: date, *, with_state: bool) -> tuple[str, dict[str, str | None]]:
    """``uid`` and the validated profile fields (``state`` among them when ``with_state``)."""
    problems: list[str] = []
    uid = text_param(params, "uid", PREFIX, problems, required=True)
    fields: dict[str, Any] = {name: value for name, value in params.items() if name != "confirm"}
    values: dict[str, str | None] = {}
    try:
        values = dict(validate_profile(fields, today, PREFIX).values)
    except ValidationFailed as exc:
        problems.extend(exc.keys)
    if with_state:
        state = text_param(params, "state", PREFIX, problems, required=False)
        if state is not None and state not in PROFILE_STATES:
            problems.append("state.inclusion")
        elif state is not None:
            values["state"] = state
    if problems or uid is None:
        raise ValidationFailed(problems)
    return uid, values


class ProfileAdmin:
    """What admins do with users' profiles."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def list(self, params: dict[str, Any]) -> tuple[list[tuple[Profile, str]], int, Page]:
        """``GET /profiles``: a page of every profile with its user's uid, oldest first."""
        page = page_params(params)
        async with reading(self._engine) as conn:
            total = int(await conn.scalar(select(func.count()).select_from(profiles)) or 0)
            query = (
                select(profiles, users.c.uid.label("user_uid"))
                .join(users, users.c.id == profiles.c.user_id)
                .order_by(profiles.c.id)
                .offset(page.offset)
                .limit(page.limit)
            )
            rows = (await conn.execute(query)).all() if total > page.offset else []
        return [(profile_from_row(row), row.user_uid) for row in rows], total, page

    async def update(self, actor: Actor, params: dict[str, Any], today: date) -> Profile:
        """``PUT /profiles``: change the user's profile (404 ``admin.profiles.doesnt_exist`` when it has none)."""
        uid, values = _change(params, today, with_state=True)
        async with transaction(self._engine) as conn:
            target = await locked_target(conn, uid)
            check_target(actor, target, superadmin_key=SUPERADMIN_CHANGE, himself=False)
            profile_id = await conn.scalar(
                select(profiles.c.id)
                .where(profiles.c.user_id == target.id)
                .order_by(profiles.c.id.desc())
                .limit(1)
            )
            if profile_id is None:
                raise RecordNotFound("admin.profiles.doesnt_exist")
            await conn.execute(
                update(profiles).where(profiles.c.id == profile_id).values(updated_at=utcnow(), **values)
            )
            await self._record(conn, actor, target, "update", values)
            row = (await conn.execute(select(profiles).where(profiles.c.id == profile_id))).one()
        return profile_from_row(row)

    async def create(self, actor: Actor, params: dict[str, Any], today: date) -> Profile:
        """``POST /profiles``: a ``submitted`` profile for a user who has none (409 ``admin.profiles.exist``)."""
        uid, values = _change(params, today, with_state=False)
        try:
            async with transaction(self._engine) as conn:
                target = await locked_target(conn, uid)
                check_target(actor, target, superadmin_key=SUPERADMIN_CHANGE, himself=False)
                profile = await SqlProfileRepository.create_in(conn, target.id, values, CREATED_STATE)
                await self._record(conn, actor, target, "create", {**values, "state": CREATED_STATE})
        except ProfileExists:
            raise AlreadyExists("admin.profiles.exist") from None
        return profile

    @staticmethod
    async def _record(
        conn: AsyncConnection, actor: Actor, target: User, action: str, values: dict[str, Any]
    ) -> None:
        data: dict[str, Any] = {"fields": sorted(name for name in values if name != "state")}
        if "state" in values:
            data["state"] = values["state"]
        await SqlActivityRepository.add_in(
            conn, [actor.activity(TOPIC, action, target_uid=target.uid, data=data)]
        )
