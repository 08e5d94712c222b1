"""Turning a user's 2FA on and off (barong-behavior.md §6, decisions.md).

- ``generate``: a NEW TOTP secret at every call (2FA stays off), stored encrypted, returned as an
  ``otpauth://`` URL and its QR code (a base64 PNG of about 300 px).
- ``enable``: a right code turns 2FA on, sets the private label ``otp:enabled`` and revokes the user's
  other sessions.
- ``disable``: a right code turns 2FA off, wipes the secret, removes the label and deactivates the API keys
  of the user and of its service accounts (``AccountPropagation``).
- ``verify``: checks a code.

A right code counts once (``TotpChecker``); a second use is ``422 totp.error``.  Every outcome but a
successful ``verify`` is written to the user's activities under the topic ``otp``.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import NoReturn

import pyotp
import segno

from identity import totp
from identity.account_propagation import AccountPropagation
from identity.account_rules import AccountRules
from identity.activity_log import ClientInfo, UserActivityLog
from identity.changes import ChangePublisher
from identity.errors import BadRequest, RecordNotFound, ValidationFailed
from identity.login import otp_context
from identity.models import User
from identity.secretbox import SecretBox
from identity.sessions import RedisSessionStore
from identity.two_factor import TotpChecker
from identity.users import SqlUserRepository

TOPIC = "otp"
QR_SIZE = 300  # pixels, as Vault's ``qr_size`` for Barong

ALREADY_ENABLED = "2FA has been already enabled for this account"
NOT_ENABLED = "2FA has not been enabled for this account"
INVALID_CODE = "OTP code is invalid"
USED_CODE = "OTP code already used"


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What an authenticator app needs: the ``otpauth://`` URL, and its QR code as base64 PNG."""

    url: str
    barcode: str


def provisioning_url(secret: str, email: str, issuer: str) -> str:
    """``otpauth://totp/<issuer>:<email>?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30``.

    pyotp leaves the default algorithm, digits and period out; Vault (and so Barong) spells them.
    """
    url = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)
    return f"{url}&algorithm=SHA1&digits=6&period={totp.STEP}"


def qr_png(text: str, size: int = QR_SIZE) -> bytes:
    """A PNG QR code of ``text``, scaled to the nearest whole number of pixels a module to ``size``."""
    code = segno.make(text, error="m", micro=False)
    width, _ = code.symbol_size(scale=1)
    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=max(1, round(size / width)))
    return buffer.getvalue()


class OtpService:
    """The ``/resource/otp`` operations of one user."""

    def __init__(
        self,
        *,
        users: SqlUserRepository,
        box: SecretBox,
        totp: TotpChecker,
        sessions: RedisSessionStore,
        changes: ChangePublisher,
        propagation: AccountPropagation,
        activity: UserActivityLog,
        rules: AccountRules,
        issuer: str,
    ) -> None:
        self._users = users
        self._box = box
        self._totp = totp
        self._sessions = sessions
        self._changes = changes
        self._propagation = propagation
        self._activity = activity
        self._rules = rules
        self._issuer = issuer

    async def _fail(self, user: User, client: ClientInfo, action: str, reason: str, error: Exception) -> NoReturn:
        await self._activity.record(user, client, TOPIC, action, "failed", reason)
        raise error

    async def _check(self, user: User, code: str, client: ClientInfo, action: str) -> None:
        """A right, unused code, else the failure is recorded and ``422 resource.otp.invalid`` / ``totp.error``."""
        try:
            right = await self._totp.verify(user, code)
        except ValidationFailed as exc:  # a right code used before
            await self._fail(user, client, action, USED_CODE, exc)
        if not right:
            await self._fail(user, client, action, INVALID_CODE, ValidationFailed("resource.otp.invalid"))

    async def generate(self, user: User, client: ClientInfo) -> Enrolment:
        """A new secret for ``user`` (replacing any earlier one); ``400 resource.otp.already_enabled`` if on."""
        action = "request QR code for 2FA"
        if user.otp:
            await self._fail(user, client, action, ALREADY_ENABLED, BadRequest("resource.otp.already_enabled"))
        secret = totp.new_secret()
        encrypted = self._box.encrypt(secret, context=otp_context(user.uid))
        if await self._users.update(user.uid, otp_secret_encrypted=encrypted) is None:
            raise RecordNotFound("record.not_found")
        await self._activity.record(user, client, TOPIC, action)
        url = provisioning_url(secret, user.email, self._issuer)
        return Enrolment(url=url, barcode=base64.b64encode(qr_png(url)).decode())

    async def enable(self, user: User, code: str, client: ClientInfo, keep_session: str | None) -> User:
        """Turn 2FA on with a right code; every other session of the user is revoked (``keep_session`` stays)."""
        action = "enable 2FA"
        if user.otp:
            await self._fail(user, client, action, ALREADY_ENABLED, BadRequest("resource.otp.already_enabled"))
        await self._check(user, code, client, action)
        # The label first: if the flag's write then fails, enabling again still works.
        if await self._users.put_label(user.uid, "otp", "enabled", "private", self._rules) is None:
            raise RecordNotFound("record.not_found")
        after = await self._users.update(user.uid, otp=True)
        if after is None:
            raise RecordNotFound("record.not_found")
        await self._changes.user_changed(user.uid)
        await self._sessions.destroy_all(user.uid, keep=keep_session)
        await self._activity.record(user, client, TOPIC, action)
        return after

    async def disable(self, user: User, code: str, client: ClientInfo) -> User:
        """Turn 2FA off with a right code: the secret is wiped, the user's and its service accounts' keys
        become inactive."""
        action = "disable 2FA"
        if not user.otp:
            await self._fail(user, client, action, NOT_ENABLED, BadRequest("resource.otp.not_enabled"))
        await self._check(user, code, client, action)
        after = await self._users.disable_otp(user.uid, self._rules)  # flag, secret and label together
        if after is None:
            raise RecordNotFound("record.not_found")
        await self._propagation.user_changed(user, after)  # deactivates the keys; announces user and keys
        await self._activity.record(user, client, TOPIC, action)
        return after

    async def verify(self, user: User, code: str, client: ClientInfo) -> None:
        """Check a code of a user with 2FA on (``400 resource.otp.not_enabled`` otherwise)."""
        action = "verify 2FA code"
        if not user.otp:
            await self._fail(user, client, action, NOT_ENABLED, BadRequest("resource.otp.not_enabled"))
        await self._check(user, code, client, action)
