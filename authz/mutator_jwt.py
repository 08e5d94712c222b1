"""The id-token mutator: the upstream's ``Authorization: Bearer <RS256 JWT>`` with Barong's claims.

An RSA signature costs ~0.4 ms, more than the rest of a decision, so signed tokens are cached per
(principal claims, key id) and reused until 90 % of their lifetime has passed (as Oathkeeper does).  The
claims name the subject and the credential (``sid``: the session, ``api_kid``: the API key), so a cached
token is identical for every request of the same session or key inside that window, ``jti`` included.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import jwt

from authz.decision import Principal
from authz.keys import Signer

REFRESH_FRACTION = 0.9


class IdTokenMutator:
    """Mints (and caches) the upstream JWT for a principal."""

    def __init__(
        self,
        key: Signer,  # read at every signing: the keyring's current key follows rotations
        *,
        expire_time: int,
        issuer: str,
        audience: tuple[str, ...],
        clock: Callable[[], float] = time.time,
        max_cached: int = 100_000,
    ) -> None:
        self._key = key
        self._expire = expire_time
        self._refresh_after = expire_time * REFRESH_FRACTION
        self._issuer = issuer
        self._audience = list(audience)
        self._clock = clock
        self._max_cached = max_cached
        self._cache: dict[tuple[object, ...], tuple[str, float]] = {}

    def header_for(self, principal: Principal) -> str:
        """``Bearer <jwt>`` for ``principal``, signed now only when no fresh cached token exists."""
        now = self._clock()
        cache_key = (principal.claims, self._key.kid)
        cached = self._cache.get(cache_key)
        if cached is not None and now < cached[1]:
            return cached[0]
        header = "Bearer " + self.sign(principal, now)
        if len(self._cache) >= self._max_cached:
            self._cache.clear()  # bounded: a burst of distinct subjects costs re-signing, not memory
        self._cache[cache_key] = (header, now + self._refresh_after)
        return header

    def sign(self, principal: Principal, now: float) -> str:
        issued = int(now)
        payload = dict(principal.claims)
        payload.update(
            iat=issued,
            exp=issued + self._expire,
            sub="session",
            iss=self._issuer,
            aud=self._audience,
            jti=secrets.token_hex(10),
        )
        return jwt.encode(payload, self._key.private_key, algorithm="RS256", headers={"kid": self._key.kid})

    def forget(self) -> None:
        """Drop every cached token (a subject's claims changed, or the key rotated)."""
        self._cache.clear()
