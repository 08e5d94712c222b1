"""TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps) with a one-step skew.

Single use is enforced by the caller: a code counts only for a time step later than the last step accepted
for the same secret (``SqlUserRepository.claim_otp_step``), which is what Vault's TOTP engine enforces for
Barong.
"""

from __future__ import annotations

import time

import pyotp

STEP = 30
SKEW = 1


def new_secret() -> str:
    return pyotp.random_base32(32)


def matching_step(secret: str, code: str, *, now: float | None = None) -> int | None:
    """The time step ``code`` is valid for (within ±SKEW), if any; single use is the caller's check."""
    code = (code or "").strip()
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = time.time() if now is None else now
    current = int(now // STEP)
    for step in range(current - SKEW, current + SKEW + 1):
        if pyotp.utils.strings_equal(totp.at(step * STEP), code):
            return step
    return None


def code_at(secret: str, when: float) -> str:
    return pyotp.TOTP(secret).at(when)
