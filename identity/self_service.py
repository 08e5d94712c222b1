"""What signed-in users do to their own account (barong-behavior.md §4.6, §9): update their JSON data,
delete the account, change the password, read their activity.

Deliberate difference (decisions.md): a password change revokes the user's other sessions (Barong keeps
them); the session the request came with stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

import orjson

from identity.account_propagation import AccountPropagation
from identity.account_rules import AccountRules
from identity.activities import ActivityFilter, SqlActivityRepository
from identity.activity_log import ClientInfo, UserActivityLog
from identity.changes import ChangePublisher
from identity.errors import BadRequest, RecordNotFound, ValidationFailed
from identity.models import Activity, User
from identity.notifications import Notifier
from identity.password_policy import PasswordPolicy
from identity.passwords import hash_password_off_loop, verify_password_off_loop
from identity.sessions import RedisSessionStore
from identity.two_factor import TotpChecker
from identity.user_fields import data_text
from identity.users import SqlUserRepository

PREFIX = "resource.user"
#: ``/users/activity/{topic}``: a topic of user activities, or ``all``.
ACTIVITY_TOPICS = ("all", "session", "otp", "password", "account")
ACTIVITY_RESULTS = ("succeed", "failed", "denied")
#: The private label that deletes an account (the account rules' ``deleted`` trigger).
DELETED_BY_USER = ("delete", "by_user")


@dataclass(frozen=True, slots=True)
class PasswordChange:
    old_password: str
    new_password: str
    confirm_password: str


class AccountSelfService:
    """The signed-in user's own account."""

    def __init__(
        self,
        *,
        users: SqlUserRepository,
        activities: SqlActivityRepository,
        activity: UserActivityLog,
        sessions: RedisSessionStore,
        totp: TotpChecker,
        propagation: AccountPropagation,
        changes: ChangePublisher,
        notifier: Notifier,
        passwords: PasswordPolicy,
        rules: AccountRules,
    ) -> None:
        self._users = users
        self._activities = activities
        self._activity = activity
        self._sessions = sessions
        self._totp = totp
        self._propagation = propagation
        self._changes = changes
        self._notifier = notifier
        self._passwords = passwords
        self._rules = rules

    async def update_data(self, user: User, data: Any) -> User:
        """Replace the user's ``data``: a JSON object, as text (or as an object in a JSON body)."""
        if data is None:
            raise ValidationFailed(f"{PREFIX}.missing_data")
        if isinstance(data, str) and not data.strip():
            raise ValidationFailed(f"{PREFIX}.empty_data")
        text, problems = data_text(data)
        if not problems and not isinstance(orjson.loads(text or "null"), dict):
            problems = ["data.invalid_format"]
        if problems:
            raise ValidationFailed(problems)
        updated = await self._users.update(user.uid, data=text)
        if updated is None:
            raise RecordNotFound()
        await self._changes.user_changed(user.uid)
        return updated

    async def delete(self, user: User, password: str, otp_code: str | None, client: ClientInfo) -> User:
        """Delete the account: the private label ``delete:by_user`` turns its state to ``deleted``; its API
        keys stop working, its service accounts follow, every session ends."""
        if not await self._password_matches(user, password):
            await self._activity.record(
                user, client, "account", "delete account", "failed", "invalid password"
            )
            raise ValidationFailed(f"{PREFIX}.invalid_password")
        if user.otp:
            if otp_code is None:
                raise ValidationFailed(f"{PREFIX}.missing_otp_code")
            if not otp_code.strip():
                raise ValidationFailed(f"{PREFIX}.empty_otp_code")
            if not await self._totp.verify(user, otp_code.strip()):
                await self._activity.record(
                    user, client, "account", "delete account", "failed", "invalid OTP"
                )
                raise ValidationFailed(f"{PREFIX}.invalid_otp")
        key, value = DELETED_BY_USER
        after = await self._users.put_label(user.uid, key, value, "private", self._rules)
        if after is None:
            raise RecordNotFound()
        await self._propagation.user_changed(user, after)
        await self._sessions.destroy_all(user.uid)
        await self._activity.record(after, client, "account", "delete account")
        return after

    async def change_password(
        self, user: User, change: PasswordChange, client: ClientInfo, *, keep_session: str | None
    ) -> None:
        """Set a new password (§4.6 checks, in Barong's order), then revoke every other session of the user
        and mail a notice."""

        async def refuse(reason: str, error: Exception) -> NoReturn:
            await self._activity.record(user, client, "password", "password change", "failed", reason)
            raise error

        if change.new_password != change.confirm_password:
            await refuse("New passwords don't match", ValidationFailed("resource.password.doesnt_match"))
        if not await self._password_matches(user, change.old_password):
            await refuse(
                "Previous password is not correct", BadRequest("resource.password.prev_pass_not_correct")
            )
        if change.old_password == change.new_password:
            await refuse(
                "New password cant be the same, as old one",
                BadRequest("resource.password.no_change_provided"),
            )
        problems = self._passwords.problems(
            change.new_password, [user.email.split("@")[0], user.username or ""]
        )
        if problems:
            await refuse(", ".join(problems), ValidationFailed(problems))
        digest = await hash_password_off_loop(change.new_password)
        if await self._users.update(user.uid, password_digest=digest) is None:
            raise RecordNotFound()
        await self._sessions.destroy_all(user.uid, keep=keep_session)
        await self._activity.record(user, client, "password", "password change")
        await self._notifier.password_changed(user)

    async def activity_page(
        self, user: User, topic: str, wanted: ActivityFilter, *, offset: int, limit: int
    ) -> tuple[list[Activity], int]:
        """The user's activities on ``topic`` (or ``all``), newest first; 422 when there are none."""
        if topic not in ACTIVITY_TOPICS:
            raise ValidationFailed(f"{PREFIX}.wrong_topic")
        if topic != "all":
            wanted = ActivityFilter(topic, wanted.result, wanted.since, wanted.until)
        found, total = await self._activities.user_page(user.id, wanted, offset=offset, limit=limit)
        if total == 0:
            raise ValidationFailed(f"{PREFIX}.no_activity")
        return found, total

    async def _password_matches(self, user: User, password: str) -> bool:
        credentials = await self._users.credentials(user.email)
        if credentials is None or credentials.user.id != user.id:
            return False
        return await verify_password_off_loop(credentials.password_digest, password)
