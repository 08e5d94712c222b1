"""The time claims of the service's JWTs (``exp``, ``iat``, ``nbf``): one rule for every verifier of them.

A time claim is an RFC 7519 NumericDate, a JSON number of seconds since the epoch.  ``exp`` and ``iat`` are
required and ``nbf`` is optional, but each one present must be a finite number: a string such as
``"9999999999"``, ``true`` (which Python would take for 1), a list or ``null`` is refused, where PyJWT
would pass anything ``int()`` accepts.  With ``leeway`` seconds for clock skew, a token is valid while
``now - leeway < exp``, and only once ``iat <= now + leeway`` and ``nbf <= now + leeway``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

REQUIRED = ("exp", "iat")
OPTIONAL = ("nbf",)


class TimeClaimError(ValueError):
    """A time claim is missing or not a number, or says that the token is not valid now."""


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return not isinstance(value, float) or math.isfinite(value)


def check_time_claims(claims: Mapping[str, Any], *, now: float, leeway: float) -> None:
    """Raise :class:`TimeClaimError` unless ``claims``' ``exp``, ``iat`` and ``nbf`` hold at ``now``."""
    for name in REQUIRED + tuple(name for name in OPTIONAL if name in claims):
        if not _is_number(claims.get(name)):
            raise TimeClaimError(f"{name} is not a number")
    if claims["exp"] <= now - leeway:
        raise TimeClaimError("the token has expired (exp)")
    if claims["iat"] > now + leeway:
        raise TimeClaimError("the token is issued in the future (iat)")
    if "nbf" in claims and claims["nbf"] > now + leeway:
        raise TimeClaimError("the token is not valid yet (nbf)")
