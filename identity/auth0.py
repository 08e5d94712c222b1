"""Verification of Auth0 id_tokens for ``POST /identity/sessions/auth0`` (Barong §3.6).

A token is accepted only when it is RS256-signed by a key of the tenant's JWKS, issued by
``https://<domain>/`` for our client id, and currently valid.  The JWKS is cached; a token naming an unknown
key id refetches it (at most every ``REFETCH_INTERVAL`` seconds) so that Auth0's key rotation needs no
restart.  Barong answers every verification failure with ``422 identity.session.auth0.invalid_params``;
a valid token without an e-mail is ``401`` (:class:`Auth0Rejected`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from identity.errors import Auth0Rejected, ValidationFailed

log = logging.getLogger(__name__)

INVALID = "identity.session.auth0.invalid_params"
ALGORITHM = "RS256"
# Tolerated clock skew between Auth0 and us for exp/iat/nbf.
LEEWAY = 60.0
# Unknown key ids are attacker-controlled: without a floor, every forged token would cost a JWKS fetch
# (and, while Auth0 is down, a timeout).
REFETCH_INTERVAL = 30.0


@dataclass(frozen=True, slots=True)
class Auth0Identity:
    """Who a verified id_token speaks for."""

    email: str
    email_verified: bool
    subject: str


class Auth0Verifier:
    """Checks Auth0 id_tokens against the tenant's published signing keys."""

    def __init__(
        self,
        http: aiohttp.ClientSession | Callable[[], aiohttp.ClientSession],
        *,
        domain: str,
        client_id: str,
        jwks_url: str = "",
        issuer: str = "",
        timeout: float = 5.0,
        jwks_cache_ttl: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._domain = domain
        self._client_id = client_id
        self._jwks_url = jwks_url or f"https://{domain}/.well-known/jwks.json"
        self._issuer = issuer or f"https://{domain}/"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._ttl = jwks_cache_ttl
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._inflight: asyncio.Future[None] | None = None

    @property
    def configured(self) -> bool:
        """Whether Auth0 login is enabled (both the domain and the client id are set)."""
        return bool(self._domain and self._client_id)

    async def verify(self, id_token: str) -> Auth0Identity:
        """Return the identity in ``id_token``, or raise.

        Raises :class:`ValidationFailed` (``identity.session.empty_id_token`` for a blank token,
        ``identity.session.auth0.invalid_params`` for anything not verifiable) or :class:`Auth0Rejected`
        when the token is valid but carries no e-mail.
        """
        if not self.configured:
            raise ValidationFailed(INVALID)
        if not isinstance(id_token, str) or not id_token.strip():
            raise ValidationFailed("identity.session.empty_id_token")
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise ValidationFailed(INVALID) from None
        kid = header.get("kid")
        # Checked before any key lookup so that ``none``/HS256 tokens cost nothing, not even a fetch.
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise ValidationFailed(INVALID)
        key = await self._key(kid)
        try:
            claims = jwt.decode(
                id_token,
                key,
                algorithms=[ALGORITHM],
                audience=self._client_id,
                issuer=self._issuer,
                # Times are checked below against the injected clock; PyJWT would read the system's.
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["exp", "iat", "iss", "aud"],
                },
            )
        except jwt.PyJWTError:
            raise ValidationFailed(INVALID) from None
        self._check_times(claims)
        email = claims.get("email")
        if not isinstance(email, str) or not email.strip():
            raise Auth0Rejected()
        subject = claims.get("sub")
        return Auth0Identity(
            email=email,
            email_verified=claims.get("email_verified") is True,
            subject=subject if isinstance(subject, str) else "",
        )

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self._clock()
        times = {name: claims.get(name) for name in ("exp", "iat", "nbf")}
        for value in times.values():
            # bool is an int in Python; ``"exp": true`` is not a time.
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ValidationFailed(INVALID)
        exp, iat, nbf = times["exp"], times["iat"], times["nbf"]
        if exp is None or now > exp + LEEWAY:
            raise ValidationFailed(INVALID)
        if iat is None or iat > now + LEEWAY:
            raise ValidationFailed(INVALID)
        if nbf is not None and nbf > now + LEEWAY:
            raise ValidationFailed(INVALID)

    async def _key(self, kid: str) -> jwt.PyJWK:
        """The signing key ``kid``, fetching the JWKS when the cache is stale or lacks it."""
        now = self._clock()
        if self._fetched_at is not None and now - self._fetched_at < self._ttl and kid in self._keys:
            return self._keys[kid]
        recent = self._attempted_at is not None and now - self._attempted_at < REFETCH_INTERVAL
        if recent and self._inflight is None:
            # The last fetch, successful or not, was moments ago: asking again would not change its answer.
            if kid in self._keys:
                return self._keys[kid]
            raise ValidationFailed(INVALID)
        try:
            await self._refresh()
        except ValidationFailed:
            # Auth0 unreachable: a key we already knew is still better than refusing every login.
            if kid in self._keys:
                log.warning("Auth0 JWKS refresh failed; using the cached key %s", kid)
                return self._keys[kid]
            raise
        if kid not in self._keys:
            raise ValidationFailed(INVALID)
        return self._keys[kid]

    async def _refresh(self) -> None:
        # Concurrent verifications wait on the same fetch; shield() keeps one caller's cancellation
        # from cancelling the fetch for the others.
        if self._inflight is None:
            self._attempted_at = self._clock()
            self._inflight = asyncio.ensure_future(self._fetch())
            self._inflight.add_done_callback(self._fetch_done)
        await asyncio.shield(self._inflight)

    def _fetch_done(self, future: asyncio.Future[None]) -> None:
        self._inflight = None
        if not future.cancelled():
            future.exception()  # marks it retrieved even if every waiter was cancelled

    async def _fetch(self) -> None:
        session = self._http if isinstance(self._http, aiohttp.ClientSession) else self._http()
        try:
            async with session.get(self._jwks_url, timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise ValueError(f"HTTP {resp.status}")
                document = await resp.json(content_type=None)
            keys = _parse_jwks(document)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, jwt.PyJWTError) as exc:
            log.warning("Auth0 JWKS fetch from %s failed: %s", self._jwks_url, exc)
            raise ValidationFailed(INVALID) from exc
        self._keys = keys
        self._fetched_at = self._clock()


def _parse_jwks(document: object) -> dict[str, jwt.PyJWK]:
    """The usable RS256 signing keys of a JWKS document, by key id."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK set")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig" or entry.get("alg", ALGORITHM) != ALGORITHM:
            continue
        try:
            keys[entry["kid"]] = jwt.PyJWK(_with_modulus(entry), algorithm=ALGORITHM)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            log.warning("Auth0 JWKS: skipping unusable key %s: %s", entry["kid"], exc)
    if not keys:
        raise ValueError("no usable RS256 keys")
    return keys


def _with_modulus(entry: dict[str, Any]) -> dict[str, Any]:
    """``entry`` with ``n``/``e``; derived from its first ``x5c`` certificate when only that is given.

    PyJWT reads RSA keys from ``n``/``e`` alone, while Barong's own Auth0 client reads ``x5c``.
    """
    if "n" in entry and "e" in entry:
        return entry
    chain = entry.get("x5c")
    if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
        raise ValueError("RSA key without n/e or x5c")
    public_key = x509.load_der_x509_certificate(base64.b64decode(chain[0], validate=True)).public_key()
    if not isinstance(public_key, RSAPublicKey):
        raise ValueError("x5c certificate does not hold an RSA key")
    numbers = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    return {**entry, "n": numbers["n"], "e": numbers["e"]}
