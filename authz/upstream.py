"""Verifying the sidecar's JWT in an upstream service (Python; see the README for Go, Node and Ruby).

The gateway puts ``Authorization: Bearer <JWT>`` on every request it lets through; an upstream trusts the
caller only through that token.  This module checks it as the sidecar mints it: RS256 only, a key of the
sidecar's JWKS (``GET /.well-known/jwks.json``) chosen by ``kid``, ``sub == "session"``, the configured
issuer and audience, ``exp``, ``iat`` and ``nbf`` with a small leeway (numbers only, by the rule the sidecar's
own verifiers apply: :mod:`identity.time_claims`), ``jti`` and ``uid`` present.

Keys are fetched with aiohttp and cached; a token with an unknown ``kid`` (the sidecar rotated its key)
refetches the JWKS, at most once per ``min_refresh_interval`` so that forged kids cannot hammer the sidecar.
The cache is also refetched when older than ``max_age``, so that retired keys leave it.

    keys = JwksKeys("http://authz:8080/.well-known/jwks.json")
    app = web.Application(middlewares=[jwt_middleware(keys, issuer="barong", audience="peatio")])
    # in a handler: request[CLAIMS]["uid"]

    claims = await verify_token(token, keys, issuer="barong", audience="peatio")   # anywhere else
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiohttp
import jwt
from aiohttp import web

from identity.time_claims import TimeClaimError, check_time_claims

REQUIRED_CLAIMS = ("exp", "iat", "sub", "iss", "aud", "jti", "uid")
CLAIMS = web.RequestKey("authz_jwt_claims", dict[str, Any])

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class UpstreamTokenError(Exception):
    """The bearer token is missing, malformed, or does not verify."""


class JwksUnavailable(UpstreamTokenError):
    """The JWKS document could not be fetched or read."""


class JwksKeys:
    """The sidecar's public keys by ``kid``, fetched from its JWKS URL and cached."""

    def __init__(
        self,
        url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 5.0,
        min_refresh_interval: float = 10.0,
        max_age: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._min_refresh = min_refresh_interval
        self._max_age = max_age
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many times the JWKS was fetched (for metrics and tests)

    async def get(self, kid: str) -> jwt.PyJWK:
        """The key ``kid``; refetches the JWKS when it is unknown (rate-limited) or the cache is stale."""
        if self._stale(self._max_age) or (kid not in self._keys and self._stale(self._min_refresh)):
            async with self._lock:  # concurrent misses share one fetch
                if self._stale(self._max_age) or (kid not in self._keys and self._stale(self._min_refresh)):
                    try:
                        await self.refresh()
                    except JwksUnavailable:
                        if kid not in self._keys:
                            raise  # a known key keeps working while the sidecar is briefly away
        key = self._keys.get(kid)
        if key is None:
            raise UpstreamTokenError(f"unknown kid {kid!r}")
        return key

    def _stale(self, age: float) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= age

    async def refresh(self) -> None:
        """Fetch the JWKS now; the RSA signing keys replace the cached ones."""
        self._fetched_at = self._clock()  # a failed fetch counts too: the rate limit holds when it is down
        self.fetches += 1
        try:
            if self._session is None:
                async with aiohttp.ClientSession(timeout=self._timeout) as session:
                    document = await _fetch(session, self._url, self._timeout)
            else:
                document = await _fetch(self._session, self._url, self._timeout)
            self._keys = dict(_signing_keys(document.get("keys", [])))
        except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError, TypeError) as exc:
            raise JwksUnavailable(f"JWKS not available: {type(exc).__name__}") from exc


async def _fetch(session: aiohttp.ClientSession, url: str, timeout: aiohttp.ClientTimeout) -> Any:
    async with session.get(url, timeout=timeout) as response:
        response.raise_for_status()
        return await response.json(content_type=None)


def _signing_keys(entries: Iterable[Any]) -> Iterable[tuple[str, jwt.PyJWK]]:
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
            continue
        kid = entry.get("kid")
        if isinstance(kid, str):
            try:
                yield kid, jwt.PyJWK(entry, algorithm="RS256")
            except jwt.PyJWTError:
                continue


async def verify_token(
    token: str,
    keys: JwksKeys,
    *,
    issuer: str = "barong",
    audience: str = "peatio",
    leeway: float = 30.0,
) -> dict[str, Any]:
    """The verified claims of the sidecar's ``token``; raises :class:`UpstreamTokenError`."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise UpstreamTokenError("malformed token") from exc
    kid = header.get("kid")
    if header.get("alg") != "RS256" or not isinstance(kid, str):
        raise UpstreamTokenError("not an RS256 token with a kid")
    key = await keys.get(kid)
    try:
        # PyJWT's own time checks take whatever int() takes ("9999999999", true): ours, below, take numbers.
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=audience,
            issuer=issuer,
            options={
                "require": list(REQUIRED_CLAIMS),
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
        check_time_claims(claims, now=time.time(), leeway=leeway)
    except (jwt.PyJWTError, TimeClaimError) as exc:
        raise UpstreamTokenError(str(exc)) from exc
    if claims["sub"] != "session" or not isinstance(claims["uid"], str):
        raise UpstreamTokenError("not a session token")
    return claims


def bearer_token(authorization: str | None) -> str:
    """The token of ``Authorization: Bearer <token>``; raises :class:`UpstreamTokenError`."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UpstreamTokenError("no bearer token")
    return token.strip()


def jwt_middleware(
    keys: JwksKeys,
    *,
    issuer: str = "barong",
    audience: str = "peatio",
    leeway: float = 30.0,
    public: Callable[[web.Request], bool] = lambda _request: False,
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """An aiohttp middleware: verified claims in ``request[CLAIMS]``, else ``401 jwt.decode_and_verify``.

    ``public(request)`` says which requests need no token (the gateway's pass routes, health checks);
    they get no claims.  A JWKS that cannot be fetched is ``503 jwt.keys_unavailable``.
    """

    @web.middleware
    async def verify(request: web.Request, handler: Handler) -> web.StreamResponse:
        if public(request):
            return await handler(request)
        try:
            token = bearer_token(request.headers.get("Authorization"))
            request[CLAIMS] = await verify_token(token, keys, issuer=issuer, audience=audience, leeway=leeway)
        except JwksUnavailable:
            return web.json_response({"errors": ["jwt.keys_unavailable"]}, status=503)
        except UpstreamTokenError:
            return web.json_response({"errors": ["jwt.decode_and_verify"]}, status=401)
        return await handler(request)

    return verify
