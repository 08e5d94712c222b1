"""Admin changes to users: state, 2FA, e-mail and role; and what admins read of users (barong-behavior.md
§8.3, seed 2.4 ``/admin/users``).

Each change is checked as Barong does it (the target exists, a superadmin is changed by a superadmin only,
nobody changes himself, the value changes), written with its admin activity in one transaction, and then
made to count at every instance's decision endpoint at once (``UserChangeEffects``): a banned user's
cookie and API keys stop working on the next request, a new role is the one the permissions see.

The labels and profiles of users are ``UserAdmin.labels`` and ``UserAdmin.profiles``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from identity.account_propagation import AccountPropagation
from identity.account_rules import AccountRules
from identity.activities import SqlActivityRepository
from identity.admin.actor import Actor
from identity.admin.inputs import text_param
from identity.admin.labels import LabelAdmin
from identity.admin.profiles import ProfileAdmin
from identity.admin.user_changes import (
    DOESNT_EXIST,
    UserChangeEffects,
    check_target,
    is_superadmin,
    locked_target,
)
from identity.admin.user_queries import (
    BASIC,
    KYC,
    WITH_PROFILES,
    UserPage,
    UserView,
    as_boolean,
    list_users,
    parse_listing,
    referral_uid_in,
    users_with_pending_documents,
    views_in,
)
from identity.api_keys import SqlApiKeyRepository
from identity.changes import ChangePublisher
from identity.db import data_storages, users, utcnow
from identity.errors import RecordNotFound, ValidationFailed
from identity.models import USER_HOLDER, ApiKey, User
from identity.paging import Page, page_params
from identity.permissions import SqlPermissionRepository
from identity.sessions import RedisSessionStore
from identity.storage import reading, transaction
from identity.user_fields import email_problems
from identity.users import SqlUserRepository

PREFIX = "admin.user"
TOPIC = "users"
#: The states Barong's users take (§4.7); the account rules may add states of their own.
USER_STATES = ("pending", "active", "banned", "deleted", "locked")


class UserAdmin:
    """What admins (API) and operators (``authz users ...``) do with users."""

    def __init__(
        self,
        engine: AsyncEngine,
        users: SqlUserRepository,
        sessions: RedisSessionStore,
        propagation: AccountPropagation,
        changes: ChangePublisher,
        rules: AccountRules,
        api_keys: SqlApiKeyRepository,
    ) -> None:
        self._engine = engine
        self._users = users
        self._rules = rules
        self._api_keys = api_keys
        self._effects = UserChangeEffects(propagation, changes, sessions)
        self.states = tuple(dict.fromkeys((*USER_STATES, *(state for state, _ in rules.state_triggers))))
        self.labels = LabelAdmin(engine, self._effects, rules)
        self.profiles = ProfileAdmin(engine)

    # --- reading ----------------------------------------------------------------------------------------

    async def list(self, params: dict[str, Any]) -> UserPage:
        """``GET /users``: a page of the users matching the filters (with their profiles when ``extended``)."""
        listing = parse_listing(params)
        async with reading(self._engine) as conn:
            found, total = await list_users(
                conn, listing.filter, listing.page, WITH_PROFILES if listing.extended else BASIC
            )
        return UserPage(found, total, listing.page, listing.extended)

    async def pending_documents(self, params: dict[str, Any]) -> UserPage:
        """``GET /users/documents/pending``: a page of the users whose documents wait for review (with all
        their KYC records when ``extended``)."""
        listing = parse_listing(params, ordered=False)
        async with reading(self._engine) as conn:
            found, total = await users_with_pending_documents(
                conn, listing.filter, listing.page, KYC if listing.extended else BASIC
            )
        return UserPage(found, total, listing.page, listing.extended)

    async def get(self, uid: str) -> UserView:
        """``GET /users/{uid}``: the user with its labels, phones, profiles, documents and data storages."""
        async with reading(self._engine) as conn:
            user = await SqlUserRepository.get_in(conn, uid)
            if user is None:
                raise RecordNotFound(DOESNT_EXIST)
            (view,) = await views_in(conn, [(user, await referral_uid_in(conn, user))], KYC)
        return view

    async def api_keys(self, params: dict[str, Any]) -> tuple[list[ApiKey], int, Page]:
        """``GET /api_keys?uid=``: a page of the user's own API keys (oldest first)."""
        problems: list[str] = []
        uid = text_param(params, "uid", "admin.api_key", problems, required=True)
        page = page_params(params, problems)
        if problems or uid is None:
            raise ValidationFailed(problems)
        user = await self._users.get_by_uid(uid)
        if user is None:
            raise RecordNotFound(DOESNT_EXIST)
        keys, total = await self._api_keys.list_for(
            USER_HOLDER, user.id, order_by="id", offset=page.offset, limit=page.limit
        )
        return keys, total, page

    # --- changes ----------------------------------------------------------------------------------------

    async def update(self, actor: Actor, params: dict[str, Any], *, with_email: bool = False) -> UserView:
        """``POST /users/update`` (exactly one of ``state``, ``otp``) and ``PUT /users`` (``with_email``: one
        of ``state``, ``otp``, ``email``)."""
        problems: list[str] = []
        uid = text_param(params, "uid", PREFIX, problems, required=True)
        names = ("state", "otp", "email") if with_email else ("state", "otp")
        given = [name for name in names if params.get(name) is not None]
        if len(given) != 1:
            problems.append(f"{PREFIX}.one_of_{'_'.join(names)}")
        value: Any = None
        if len(given) == 1 and given[0] == "otp":
            value = as_boolean(params["otp"])
            if value is None:
                problems.append(f"{PREFIX}.non_boolean_otp")
        elif len(given) == 1:
            value = text_param(params, given[0], PREFIX, problems, required=True)
        if problems or uid is None:
            raise ValidationFailed(problems)
        if given[0] == "state":
            return await self.set_state(actor, uid, value)
        if given[0] == "otp":
            return await self.set_otp(actor, uid, value)
        return await self.set_email(actor, uid, value)

    async def set_state(self, actor: Actor, uid: str, state: str) -> UserView:
        """Give the user ``state``; one that may not log in revokes its sessions and deactivates its keys."""
        async with transaction(self._engine) as conn:
            before = await locked_target(conn, uid)
            check_target(actor, before)
            if state == before.state:
                raise ValidationFailed(f"{PREFIX}.state_no_change")
            if state not in self.states:
                raise ValidationFailed(f"{PREFIX}.invalid_state")
            await conn.execute(
                update(users).where(users.c.id == before.id).values(state=state, updated_at=utcnow())
            )
            after = await self._record(conn, actor, before, "state", before.state, state)
        await self._effects.apply(before, after.user)
        return after

    async def set_otp(self, actor: Actor, uid: str, enabled: bool) -> UserView:
        """Turn the user's 2FA off (admins may not turn it on: ``admin.user.enable_2fa``): the secret and the
        label ``otp:enabled`` go, and the keys of the user and of its service accounts become inactive."""
        async with transaction(self._engine) as conn:
            before = await locked_target(conn, uid)
            check_target(actor, before)
            if enabled:
                raise ValidationFailed(f"{PREFIX}.enable_2fa")
            if not before.otp:
                raise ValidationFailed(f"{PREFIX}.otp_no_change")
            await SqlUserRepository.disable_otp_in(conn, before.id, self._rules)
            after = await self._record(conn, actor, before, "otp", True, False)
        await self._effects.apply(before, after.user)
        return after

    async def set_email(self, actor: Actor, uid: str, email: str) -> UserView:
        """Change the user's e-mail (superadmins only: ``superadmin.user.update_email``)."""
        async with transaction(self._engine, conflict_key="email.taken") as conn:
            before = await locked_target(conn, uid)
            check_target(actor, before)
            if not is_superadmin(actor):
                raise ValidationFailed("superadmin.user.update_email")
            if email == before.email:
                raise ValidationFailed(f"{PREFIX}.email_no_change")
            problems = email_problems(email)
            if (
                not problems
                and await conn.scalar(select(users.c.id).where(users.c.email == email)) is not None
            ):
                problems.append("email.taken")
            if problems:
                raise ValidationFailed(problems)
            await conn.execute(
                update(users).where(users.c.id == before.id).values(email=email, updated_at=utcnow())
            )
            after = await self._record(conn, actor, before, "email", before.email, email)
        await self._effects.apply(before, after.user)
        return after

    async def change_role(self, actor: Actor, params: dict[str, Any]) -> UserView:
        """``POST /users/role`` with ``uid`` and ``role``."""
        problems: list[str] = []
        uid = text_param(params, "uid", PREFIX, problems, required=True)
        role = text_param(params, "role", PREFIX, problems, required=True)
        if problems or uid is None or role is None:
            raise ValidationFailed(problems)
        return await self.set_role(actor, uid, role)

    async def set_role(self, actor: Actor, uid: str, role: str) -> UserView:
        """Give the user ``role``, which must have permissions (``role.doesnt_exist``); only a superadmin
        makes superadmins (``admin.user.not_superadmin``, as Barong 2.6)."""
        async with transaction(self._engine) as conn:
            before = await locked_target(conn, uid)
            check_target(actor, before)
            if role == before.role:
                raise ValidationFailed(f"{PREFIX}.role_no_change")
            if role == "superadmin" and not is_superadmin(actor):
                raise ValidationFailed(f"{PREFIX}.not_superadmin")
            if not await SqlPermissionRepository.has_role_in(conn, role):
                raise ValidationFailed("role.doesnt_exist")
            await conn.execute(
                update(users).where(users.c.id == before.id).values(role=role, updated_at=utcnow())
            )
            after = await self._record(conn, actor, before, "role", before.role, role)
        await self._effects.apply(before, after.user)
        return after

    async def delete_data_storage(self, actor: Actor, params: dict[str, Any]) -> None:
        """``DELETE /users/data_storage`` with ``uid`` and ``title``: 404 ``admin.storage.doesnt_exist``."""
        problems: list[str] = []
        uid = text_param(params, "uid", PREFIX, problems, required=True)
        title = text_param(params, "title", PREFIX, problems, required=True)
        if problems or uid is None or title is None:
            raise ValidationFailed(problems)
        title = " ".join(title.split())  # as stored (identity/data_storage.py)
        async with transaction(self._engine) as conn:
            target = await locked_target(conn, uid)
            check_target(actor, target, himself=False)
            result = await conn.execute(
                delete(data_storages).where(
                    data_storages.c.user_id == target.id, data_storages.c.title == title
                )
            )
            if result.rowcount == 0:
                raise RecordNotFound("admin.storage.doesnt_exist")
            activity = actor.activity(TOPIC, "delete", target_uid=uid, data={"data_storage": title})
            await SqlActivityRepository.add_in(conn, [activity])

    async def _record(
        self, conn: Any, actor: Actor, before: User, field: str, old: Any, new: Any
    ) -> UserView:
        """The admin activity of a change of ``field``, on the change's transaction; the user afterwards."""
        activity = actor.activity(TOPIC, "update", target_uid=before.uid, data={field: new, "previous": old})
        await SqlActivityRepository.add_in(conn, [activity])
        after = await SqlUserRepository.get_in(conn, before.uid)
        assert after is not None  # its row is locked (PostgreSQL) or the transaction holds the write lock
        return UserView(after, await referral_uid_in(conn, after))
