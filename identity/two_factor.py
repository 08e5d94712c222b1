"""Checking a user's TOTP code once (resource API guards: API keys, service accounts, OTP, account deletion).

A code counts when it matches the user's stored secret within one step of skew and its time step is later
than the last one accepted (``SqlUserRepository.claim_otp_step``); a right code used a second time is what
Vault's TOTP engine refuses for Barong, surfaced as ``422 totp.error``.
"""

from __future__ import annotations

from collections.abc import Callable

from identity import totp
from identity.errors import ValidationFailed
from identity.login import otp_context
from identity.models import User
from identity.secretbox import SecretBox, SecretBoxError
from identity.users import SqlUserRepository


class TotpChecker:
    """Verifies (and uses up) TOTP codes of users."""

    def __init__(self, users: SqlUserRepository, box: SecretBox, clock: Callable[[], float]) -> None:
        self._users = users
        self._box = box
        self._clock = clock

    async def secret_of(self, user: User) -> str | None:
        """The user's stored TOTP secret (set by ``generate_qrcode``, even before 2FA is enabled)."""
        encrypted = await self._users.otp_secret(user.id)
        if not encrypted:
            return None
        try:
            return self._box.decrypt(encrypted, context=otp_context(user.uid))
        except SecretBoxError:
            return None

    async def verify(self, user: User, code: str | None) -> bool:
        """True when ``code`` is valid now and not used before; False when wrong.

        Raises ``ValidationFailed("totp.error")`` for a right code whose step was already used.
        """
        secret = await self.secret_of(user)
        if secret is None:
            return False
        step = totp.matching_step(secret, code or "", now=self._clock())
        if step is None:
            return False
        if not await self._users.claim_otp_step(user.id, step):
            raise ValidationFailed("totp.error")
        return True
