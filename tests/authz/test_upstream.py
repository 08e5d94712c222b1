"""The upstream verifier (``authz.upstream``): the sidecar's token checks, the JWKS cache and its refresh."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from authz.keys import SigningKey, jwks
from authz.upstream import CLAIMS, JwksKeys, UpstreamTokenError, jwt_middleware, verify_token
from tests.authz.helpers import signing_key_pem


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def token(key: SigningKey, **changes: Any) -> str:
    now = int(time.time())
    claims = {"uid": "ID1", "sub": "session", "iss": "barong", "aud": ["peatio", "barong"], "jti": "j",
              "iat": now, "exp": now + 300, **changes}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key.private_key, "RS256",
                      headers={"kid": key.kid})


@pytest.fixture
def first() -> SigningKey:
    return SigningKey.from_pem(signing_key_pem())


@pytest.fixture
def second() -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey.from_pem(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@pytest.fixture
async def published(aiohttp_server: Any, first: SigningKey) -> Any:
    """A JWKS server whose document the test changes; ``.fetches`` counts requests."""
    state: dict[str, Any] = {"keys": [first], "fetches": 0}

    async def document(_request: web.Request) -> web.Response:
        state["fetches"] += 1
        return web.json_response(jwks(*state["keys"]))

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", document)
    server = await aiohttp_server(app)
    state["url"] = str(server.make_url("/.well-known/jwks.json"))
    return state


async def test_valid_token_verifies(published: Any, first: SigningKey) -> None:
    claims = await verify_token(token(first), JwksKeys(published["url"]))
    assert claims["uid"] == "ID1"


@pytest.mark.parametrize(
    "changes",
    [{"sub": "confirmation"}, {"iss": "other"}, {"aud": ["other"]}, {"exp": int(time.time()) - 60},
     {"iat": int(time.time()) + 600}, {"jti": None}, {"uid": None}],
)
async def test_claims_are_checked(published: Any, first: SigningKey, changes: dict[str, Any]) -> None:
    with pytest.raises(UpstreamTokenError):
        await verify_token(token(first, **changes), JwksKeys(published["url"]))


#: (case, time claims put over a valid token's as a function of now, accepted) with a 30 s leeway: the
#: rule of every verifier of the service's JWTs (also run against the service's bearer check and its
#: access tokens).  A time claim must be a finite JSON number; ``None`` is sent as ``null``.
TIME_CLAIM_CASES: list[tuple[str, Callable[[int], dict[str, Any]], bool]] = [
    ("integers", lambda now: {}, True),
    ("fractions of seconds", lambda now: {"iat": now - 0.5, "nbf": now - 0.5, "exp": now + 60.5}, True),
    ("nbf now", lambda now: {"nbf": now}, True),
    ("nbf within the leeway", lambda now: {"nbf": now + 10}, True),
    ("nbf beyond the leeway", lambda now: {"nbf": now + 120}, False),
    ("expired", lambda now: {"exp": now - 60}, False),
    ("issued in the future", lambda now: {"iat": now + 600}, False),
    ("exp a numeric string", lambda now: {"exp": "9999999999"}, False),
    ("iat a numeric string", lambda now: {"iat": str(now)}, False),
    ("nbf a numeric string", lambda now: {"nbf": str(now)}, False),
    ("exp true", lambda now: {"exp": True}, False),
    ("iat true", lambda now: {"iat": True}, False),
    ("iat false", lambda now: {"iat": False}, False),
    ("nbf false", lambda now: {"nbf": False}, False),
    ("exp a list", lambda now: {"exp": [now + 60]}, False),
    ("nbf a list", lambda now: {"nbf": [now]}, False),
    ("exp an object", lambda now: {"exp": {"value": now + 60}}, False),
    ("exp null", lambda now: {"exp": None}, False),
    ("iat null", lambda now: {"iat": None}, False),
    ("nbf null", lambda now: {"nbf": None}, False),
    ("exp infinite", lambda now: {"exp": math.inf}, False),
    ("exp NaN", lambda now: {"exp": math.nan}, False),
    ("iat NaN", lambda now: {"iat": math.nan}, False),
    ("nbf NaN", lambda now: {"nbf": math.nan}, False),
]

#: The table as a parametrization (``times``, ``accepted``), for every verifier's test.
EACH_TIME_CLAIM_CASE = pytest.mark.parametrize(
    ("times", "accepted"), [case[1:] for case in TIME_CLAIM_CASES], ids=[case[0] for case in TIME_CLAIM_CASES]
)


@EACH_TIME_CLAIM_CASE
async def test_time_claims_must_be_numbers_that_hold_now(
    published: Any, first: SigningKey, times: Callable[[int], dict[str, Any]], accepted: bool
) -> None:
    now = int(time.time())
    claims = {"uid": "ID1", "sub": "session", "iss": "barong", "aud": ["peatio", "barong"], "jti": "j",
              "iat": now, "exp": now + 300, **times(now)}
    signed = jwt.encode(claims, first.private_key, "RS256", headers={"kid": first.kid})
    if accepted:
        assert (await verify_token(signed, JwksKeys(published["url"])))["uid"] == "ID1"
    else:
        with pytest.raises(UpstreamTokenError):
            await verify_token(signed, JwksKeys(published["url"]))


async def test_only_rs256_is_accepted(published: Any, first: SigningKey) -> None:
    forged = jwt.encode({"uid": "ID1", "sub": "session"}, "a-secret-of-thirty-two-bytes-or-more!", "HS256", headers={"kid": first.kid})
    with pytest.raises(UpstreamTokenError):
        await verify_token(forged, JwksKeys(published["url"]))
    unsigned = jwt.encode({"uid": "ID1"}, None, "none", headers={"kid": first.kid})
    with pytest.raises(UpstreamTokenError):
        await verify_token(unsigned, JwksKeys(published["url"]))


async def test_unknown_kid_refetches_the_jwks_at_most_once_per_interval(
    published: Any, first: SigningKey, second: SigningKey
) -> None:
    ticks = Ticks()
    keys = JwksKeys(published["url"], min_refresh_interval=30, clock=ticks)
    await verify_token(token(first), keys)
    published["keys"] = [first, second]  # the sidecar rotated
    ticks.now += 31
    assert (await verify_token(token(second), keys))["uid"] == "ID1"
    assert published["fetches"] == 2

    for attempt in range(5):
        with pytest.raises(UpstreamTokenError):
            await keys.get(f"forged-{attempt}")
    assert published["fetches"] == 2  # unknown kids inside the interval: no fetch
    ticks.now += 31
    with pytest.raises(UpstreamTokenError):
        await keys.get("forged")
    assert published["fetches"] == 3


async def test_stale_cache_drops_retired_keys(published: Any, first: SigningKey, second: SigningKey) -> None:
    ticks = Ticks()
    published["keys"] = [first, second]
    keys = JwksKeys(published["url"], max_age=300, clock=ticks)
    await keys.get(first.kid)
    published["keys"] = [second]
    ticks.now += 301
    with pytest.raises(UpstreamTokenError):
        await keys.get(first.kid)


async def test_middleware_puts_claims_on_the_request(aiohttp_client: Any, published: Any, first: SigningKey) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"claims": request.get(CLAIMS)})

    app = web.Application(
        middlewares=[jwt_middleware(JwksKeys(published["url"]), public=lambda r: r.path == "/health")]
    )
    app.router.add_get("/{tail:.*}", handler)
    client = await aiohttp_client(app)
    ok = await client.get("/x", headers={"Authorization": f"Bearer {token(first)}"})
    assert (await ok.json())["claims"]["uid"] == "ID1"
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": f"Basic {token(first)}"}):
        refused = await client.get("/x", headers=headers)
        assert refused.status == 401
        assert await refused.json() == {"errors": ["jwt.decode_and_verify"]}
    assert (await (await client.get("/health")).json()) == {"claims": None}
