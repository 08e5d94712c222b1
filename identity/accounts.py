"""Sign-up, e-mail confirmation, password reset and whitelink access (barong-behavior.md §4.1–4.5, §7.3).

Barong emits events that a separate mailer turns into e-mails; here the service queues the e-mails itself
(:class:`identity.notifications.Notifier`).  Deliberate differences (decisions.md): a password reset also
forgets the reset token it used and revokes every session of the user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from identity.account_rules import AccountRules
from identity.activity_log import ClientInfo, UserActivityLog
from identity.changes import ChangePublisher
from identity.errors import Conflict, IdentityError, RecordNotFound, ValidationFailed
from identity.login import LoginResult, LoginService
from identity.models import User
from identity.notifications import Notifier
from identity.password_policy import PasswordPolicy
from identity.passwords import hash_password_off_loop
from identity.permissions import SqlPermissionRepository
from identity.restrictions import SqlRestrictionRepository, validate_restriction
from identity.send_throttle import SendThrottle
from identity.sessions import RedisSessionStore
from identity.tokens import CONFIRMATION, RESET, AccountTokens
from identity.user_fields import validate_new_user
from identity.users import SqlUserRepository
from identity.whitelinks import RedisWhitelinkTokens

DEFAULT_ROLE = "member"


@dataclass(frozen=True, slots=True)
class SignUpForm:
    email: str
    password: str
    username: Any = None
    refid: str | None = None
    data: Any = None


class AccountService:
    """The account life cycle before and around login."""

    def __init__(
        self,
        *,
        users: SqlUserRepository,
        permissions: SqlPermissionRepository,
        restrictions: SqlRestrictionRepository,
        sessions: RedisSessionStore,
        login: LoginService,
        activity: UserActivityLog,
        tokens: AccountTokens,
        whitelinks: RedisWhitelinkTokens,
        notifier: Notifier,
        confirmations: SendThrottle,
        resets: SendThrottle,
        passwords: PasswordPolicy,
        rules: AccountRules,
        changes: ChangePublisher,
        uid_prefix: str,
        first_registration_superadmin: bool,
        clock: Callable[[], float],
    ) -> None:
        self._users = users
        self._permissions = permissions
        self._restrictions = restrictions
        self._sessions = sessions
        self._login = login
        self._activity = activity
        self._tokens = tokens
        self._whitelinks = whitelinks
        self._notifier = notifier
        self._confirmations = confirmations
        self._resets = resets
        self._passwords = passwords
        self._rules = rules
        self._changes = changes
        self._uid_prefix = uid_prefix.upper()
        self._first_superadmin = first_registration_superadmin
        self._clock = clock

    async def sign_up(
        self, form: SignUpForm, client: ClientInfo, previous_session_id: str | None
    ) -> LoginResult:
        """Create an account and open its first session (§4.1); its confirmation mail counts against the
        address's and the client's confirmation limits (:class:`identity.errors.TooManyRequests`)."""
        referral_id = await self._referrer_id(form.refid)
        fields, problems = validate_new_user(
            form.email, form.password, form.username, form.data, self._passwords
        )
        if fields is not None:
            problems.extend(await self._users.taken(email=fields.email, username=fields.username))
        if not await self._permissions.has_role(DEFAULT_ROLE):
            problems.append("role.doesnt_exist")
        if problems or fields is None:
            raise ValidationFailed(problems)
        await self._confirmations.admit(fields.email, client.ip)
        user, promoted = await self._users.sign_up(
            email=fields.email,
            password_digest=await hash_password_off_loop(fields.password),
            username=fields.username,
            data=fields.data,
            referral_id=referral_id,
            activity=self._activity.entry(client, "account", "signup"),
            first_superadmin=self._first_superadmin,
            rules=self._rules,
        )
        if not promoted:
            await self._notifier.email_confirmation(user, self._tokens.confirmation_token(user))
        return await self._login.open(user, client, previous_session_id)

    async def _referrer_id(self, refid: str | None) -> int | None:
        if refid is None or refid == "":
            return None
        if not refid.upper().startswith(self._uid_prefix):
            raise ValidationFailed("identity.user.invalid_referral_format")
        referrer = await self._users.get_by_uid(refid.upper())
        if referrer is None:
            raise ValidationFailed("identity.user.referral_doesnt_exist")
        return referrer.id

    async def request_confirmation(self, email: str, client: ClientInfo) -> None:
        """Mail a new confirmation link; unknown and already active accounts are silently ignored (§4.4).

        Every request counts against the confirmation limits, whether or not it mails anything.
        """
        await self._confirmations.admit(email, client.ip)
        user = await self._users.get_by_email(email)
        if user is None or user.state == "active":
            return
        await self._notifier.email_confirmation(user, self._tokens.confirmation_token(user))

    async def confirm_email(
        self, token: str, client: ClientInfo, previous_session_id: str | None
    ) -> LoginResult:
        """Verify the account's e-mail (private label ``email:verified``) and open a session (§4.4)."""
        claims = self._tokens.decode(token, CONFIRMATION)
        user = await self._users.get_by_uid(claims["uid"])
        if user is None or user.email != claims["email"] or user.state == "active":
            raise ValidationFailed("identity.user.active_or_doesnt_exist")
        if not await self._tokens.claim(claims):
            raise ValidationFailed("identity.user.utilized_token")
        try:
            confirmed = await self._users.put_label(user.uid, "email", "verified", "private", self._rules)
        except IdentityError:
            await self._tokens.release(claims)  # nothing was written: the link must keep working
            raise
        if confirmed is None:
            raise ValidationFailed("identity.user.active_or_doesnt_exist")
        await self._changes.user_changed(confirmed.uid)
        return await self._login.open(confirmed, client, previous_session_id)

    async def request_reset(self, email: str, client: ClientInfo) -> None:
        """Mail a password reset link; unknown e-mails are silently ignored (§4.5).

        Every request counts against the reset limits, whether or not it mails anything.
        """
        await self._resets.admit(email, client.ip)
        user = await self._users.get_by_email(email)
        if user is None:
            return
        token = await self._tokens.reset_token(user)
        await self._activity.record(user, client, "password", "request password reset")
        await self._notifier.password_reset(user, token)

    async def confirm_reset(self, token: str, password: str, confirmation: str, client: ClientInfo) -> User:
        """Set a new password with a reset token, then revoke every session of the user (§4.5)."""
        if password != confirmation:
            raise ValidationFailed("identity.user.passwords_doesnt_match")
        claims = self._tokens.decode(token, RESET)
        if not await self._tokens.reset_is_current(claims):
            raise ValidationFailed("identity.user.utilized_token")
        user = await self._users.get_by_uid(claims["uid"])
        if user is None or user.email != claims["email"]:
            raise RecordNotFound()
        problems = self._passwords.problems(password, [user.email.split("@")[0], user.username or ""])
        if problems:
            await self._activity.record(
                user, client, "password", "password reset", "failed", ", ".join(problems)
            )
            raise ValidationFailed(problems)
        if not await self._tokens.claim(claims):
            raise ValidationFailed("identity.user.utilized_token")
        try:
            updated = await self._users.update(
                user.uid, password_digest=await hash_password_off_loop(password)
            )
        except IdentityError:
            await self._tokens.release(claims)
            raise
        await self._tokens.forget_reset(user.email)
        await self._sessions.destroy_all(user.uid)
        await self._activity.record(user, client, "password", "password reset")
        await self._notifier.password_changed(user)
        return updated or user

    async def whitelist_client(self, token: str, client: ClientInfo) -> None:
        """Whitelist the caller's IP with a whitelink token (§7.3); the token stays valid until it expires."""
        if not await self._whitelinks.active(token):
            raise ValidationFailed("identity.user.access.invalid_token")
        restriction = validate_restriction("whitelist", "ip", client.ip, "enabled")
        try:
            await self._restrictions.add(restriction)
        except Conflict:
            raise ValidationFailed("value.taken") from None
        await self._changes.restrictions_changed()
