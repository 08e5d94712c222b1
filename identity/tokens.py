"""E-mail confirmation and password reset tokens (barong-behavior.md §4.4–4.5).

Both are RS256 JWTs signed with the service's key (``sub`` ``confirmation`` or ``reset``, Barong's claims),
so a front end can read them; each is accepted once (its ``jti`` is claimed in Redis for the token's
lifetime).  A reset token also carries a random ``reset_token`` that must equal the one stored for the
e-mail: a newer reset request replaces it and so invalidates every older token.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from redis.asyncio import Redis

from identity.errors import ValidationFailed
from identity.models import User
from identity.redis_errors import redis_guard

CONFIRMATION = "confirmation"
RESET = "reset"

#: PyJWT's errors as the last word of ruby-jwt's messages, which Barong's keys end with
#: (``jwt.decode_and_verify.expired``, ``...segments``).
_ERROR_WORDS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.InvalidSignatureError, "failed"),
    (jwt.InvalidIssuerError, "issuer"),
    (jwt.InvalidAudienceError, "audience"),
    (jwt.ImmatureSignatureError, "nbf"),
    (jwt.InvalidIssuedAtError, "iat"),
    (jwt.MissingRequiredClaimError, "claim"),
    (jwt.InvalidAlgorithmError, "algorithm"),
    (jwt.DecodeError, "segments"),
)


class Signer(Protocol):
    """The service's current signing key; read at every signing, so that key rotations are followed."""

    @property
    def kid(self) -> str: ...

    @property
    def private_key(self) -> rsa.RSAPrivateKey: ...


class AccountTokens:
    """Issues and checks confirmation and reset tokens.

    ``signer`` and ``public_keys`` are read at each use (the keyring's live views): a token signed before a
    key rotation keeps verifying while its key is published.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        namespace: str,
        signer: Signer,
        public_keys: Mapping[str, rsa.RSAPublicKey],
        issuer: str,
        audience: Sequence[str],
        email_ttl: int,
        reset_ttl: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._ns = namespace
        self._signer = signer
        self._public_keys = public_keys
        self._issuer = issuer
        self._audience = list(audience)
        self._ttl = {CONFIRMATION: email_ttl, RESET: reset_ttl}
        self._clock = clock

    def _sign(self, subject: str, user: User, **extra: Any) -> str:
        now = int(self._clock())
        claims = {
            "sub": subject,
            "email": user.email,
            "uid": user.uid,
            "iat": now,
            "exp": now + self._ttl[subject],
            "iss": self._issuer,
            "aud": self._audience,
            "jti": secrets.token_hex(10),
            **extra,
        }
        signer = self._signer
        return jwt.encode(claims, signer.private_key, algorithm="RS256", headers={"kid": signer.kid})

    def confirmation_token(self, user: User) -> str:
        return self._sign(CONFIRMATION, user)

    async def reset_token(self, user: User) -> str:
        """A reset token for ``user``; from now on older reset tokens of the same e-mail are refused."""
        reset_token = secrets.token_hex(10)
        async with redis_guard():
            await self._redis.set(self._reset_key(user.email), reset_token, ex=self._ttl[RESET])
        return self._sign(RESET, user, reset_token=reset_token)

    def decode(self, token: str, subject: str) -> dict[str, Any]:
        """The verified claims of a ``subject`` token, or ``ValidationFailed('jwt.decode_and_verify.<word>')``."""
        try:
            # A kid we do not publish is checked against the current key: it fails as a bad signature.
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._public_keys.get(kid) if isinstance(kid, str) else None
            key = key or self._signer.private_key.public_key()
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "jti", "sub"], "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            word = next((w for cls, w in _ERROR_WORDS if isinstance(exc, cls)), "invalid")
            raise ValidationFailed(f"jwt.decode_and_verify.{word}") from None
        # Time is checked against the service's clock (one clock for issuing and checking).
        now = self._clock()
        if not isinstance(claims.get("exp"), int) or now >= claims["exp"]:
            raise ValidationFailed("jwt.decode_and_verify.expired")
        if not isinstance(claims.get("iat"), int) or claims["iat"] > now + 60:
            raise ValidationFailed("jwt.decode_and_verify.iat")
        if claims.get("sub") != subject:
            raise ValidationFailed("jwt.decode_and_verify.subject")
        if not isinstance(claims.get("uid"), str) or not isinstance(claims.get("email"), str):
            raise ValidationFailed("jwt.decode_and_verify.claim")
        return claims

    async def claim(self, claims: dict[str, Any]) -> bool:
        """Mark the token used; False when it had been used already (one use, even under concurrency)."""
        async with redis_guard():
            return bool(
                await self._redis.set(
                    self._used_key(claims["jti"]), "1", nx=True, ex=self._ttl[claims["sub"]]
                )
            )

    async def release(self, claims: dict[str, Any]) -> None:
        """Undo :meth:`claim` when the change the token was for could not be written."""
        async with redis_guard():
            await self._redis.delete(self._used_key(claims["jti"]))

    async def reset_is_current(self, claims: dict[str, Any]) -> bool:
        async with redis_guard():
            stored = await self._redis.get(self._reset_key(claims["email"]))
        given = claims.get("reset_token")
        return isinstance(given, str) and stored is not None and secrets.compare_digest(stored, given)

    async def forget_reset(self, email: str) -> None:
        async with redis_guard():
            await self._redis.delete(self._reset_key(email))

    def _used_key(self, jti: str) -> str:
        return f"{self._ns}:used_jti:{jti}"

    def _reset_key(self, email: str) -> str:
        return f"{self._ns}:reset_password:{email}"
