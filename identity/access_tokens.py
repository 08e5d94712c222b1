"""Access tokens of the token API (``POST /v1/oauth``): short-lived RS256 JWTs that name a token session.

An access token is a standard JWT that any JWT library verifies with the service's JWKS, but it can never be
taken for the upstream JWT the decision endpoint mints, nor the other way round: its header says
``typ: at+jwt`` (RFC 9068), its ``sub`` is ``access`` (upstream JWTs say ``session``) and it has no audience
(upstream verifiers require ``peatio``/``barong``).  Claims: ``iss``, ``sub``, ``uid`` (the user),
``sid`` (the session's public id), ``jti``, ``iat``, ``exp``.

The token alone proves nothing after a revocation: whoever accepts one must also check that its session is
still live (:class:`identity.token_sessions.TokenSessionService` and the decision endpoint do).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from identity.errors import AccessTokenRejected
from identity.time_claims import TimeClaimError, check_time_claims

TOKEN_TYPE = "at+jwt"
SUBJECT = "access"
REQUIRED_CLAIMS = ("exp", "iat", "iss", "sub", "jti", "uid", "sid")


class Signer(Protocol):
    """The current signing key (read at every signing, so that a key rotation is followed)."""

    @property
    def kid(self) -> str: ...

    @property
    def private_key(self) -> RSAPrivateKey: ...


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says: whose it is, which session, until when."""

    uid: str
    session: str
    expires_at: float


class AccessTokens:
    """Issues and verifies access tokens.

    Verified tokens are remembered (a bounded LRU keyed by the token text) so that a client presenting the
    same token on every request costs one RSA verification per token, not per request; expiry is still
    checked against the clock each time.
    """

    def __init__(
        self,
        signer: Signer,
        public_keys: Mapping[str, RSAPublicKey],
        *,
        issuer: str,
        lifetime: int,
        leeway: float = 30.0,
        clock: Callable[[], float] = time.time,
        memo_size: int = 10_000,
    ) -> None:
        self._signer = signer
        self._keys = public_keys
        self._issuer = issuer
        self.lifetime = lifetime
        self._leeway = leeway
        self._clock = clock
        self._memo: OrderedDict[str, AccessClaims] = OrderedDict()
        self._memo_size = memo_size

    def issue(self, uid: str, session: str) -> str:
        """A new access token for ``uid``'s token session ``session`` (its public id)."""
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": SUBJECT,
            "uid": uid,
            "sid": session,
            "jti": secrets.token_hex(16),
            "iat": now,
            "exp": now + self.lifetime,
        }
        headers = {"typ": TOKEN_TYPE, "kid": self._signer.kid}
        return jwt.encode(claims, self._signer.private_key, algorithm="RS256", headers=headers)

    def verify(self, token: str) -> AccessClaims:
        """The claims of a valid, unexpired access token; raises :class:`AccessTokenRejected`."""
        claims = self._memo.get(token)
        if claims is None:
            claims = self._decode(token)
            self._memo[token] = claims
            if len(self._memo) > self._memo_size:
                self._memo.popitem(last=False)
        if claims.expires_at <= self._clock() - self._leeway:
            self._memo.pop(token, None)
            raise AccessTokenRejected()
        return claims

    def _decode(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(header.get("kid", ""))
            if key is None or header.get("alg") != "RS256" or header.get("typ") != TOKEN_TYPE:
                raise AccessTokenRejected()
            # Time claims are checked against the service clock below (the one that issued the token).
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                issuer=self._issuer,
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            raise AccessTokenRejected() from None
        if "aud" in claims or claims.get("sub") != SUBJECT:
            raise AccessTokenRejected()
        uid, session = claims.get("uid"), claims.get("sid")
        if not (isinstance(uid, str) and uid and isinstance(session, str) and session):
            raise AccessTokenRejected()
        try:
            check_time_claims(claims, now=self._clock(), leeway=self._leeway)
        except TimeClaimError:
            raise AccessTokenRejected() from None
        return AccessClaims(uid=uid, session=session, expires_at=float(claims["exp"]))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive), else None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token
