"""Verifying the upstream JWT that the decision endpoint minted (``Authorization: Bearer <JWT>``).

The resource and admin APIs sit behind the gateway like any upstream: they trust a request only through
the RS256 token the decision endpoint put on it, checked as Peatio-style verifiers do (barong-behavior.md
§1.3): signature by one of our public keys (chosen by ``kid``), ``sub == "session"``, the configured
issuer and audience, ``exp``/``iat``/``nbf`` against the service clock (:mod:`identity.time_claims`), and
the presence of ``jti`` and ``uid``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from identity.errors import BearerRejected
from identity.time_claims import TimeClaimError, check_time_claims

REQUIRED_CLAIMS = ("exp", "iat", "sub", "iss", "aud", "jti", "uid")


class BearerVerifier:
    """Checks bearer tokens against the service's public keys; every failure is ``401 jwt.decode_and_verify``."""

    def __init__(
        self,
        public_keys: Mapping[str, RSAPublicKey],
        *,
        issuer: str,
        audience: tuple[str, ...],
        leeway: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not public_keys:
            raise ValueError("at least one public key is needed")
        self._keys = public_keys  # not copied: a live mapping (the keyring's) follows key rotations
        self._issuer = issuer
        self._audience = list(audience)
        self._leeway = leeway
        self._clock = clock

    def claims(self, authorization: str | None) -> dict[str, Any]:
        """The verified claims of ``Authorization: Bearer <token>``; raises :class:`BearerRejected`."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise BearerRejected()
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(header.get("kid")) if len(self._keys) > 1 else next(iter(self._keys.values()))
            if key is None or header.get("alg") != "RS256":
                raise BearerRejected()
            # Time claims are checked below against the service clock (the one the minting side uses).
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": list(REQUIRED_CLAIMS), "verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            raise BearerRejected() from None
        now = self._clock()
        if claims.get("sub") != "session" or not isinstance(claims.get("uid"), str):
            raise BearerRejected()
        try:
            check_time_claims(claims, now=now, leeway=self._leeway)
        except TimeClaimError:
            raise BearerRejected() from None
        return claims
