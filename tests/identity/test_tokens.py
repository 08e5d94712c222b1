"""E-mail confirmation and password reset tokens: RS256 JWTs with Barong's claims, each usable once, a
newer reset request invalidating older reset tokens."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from redis.asyncio import Redis

from authz.http.errors import status_of
from authz.keys import SigningKey
from authz.services import open_redis
from identity.errors import ValidationFailed
from identity.models import User
from identity.tokens import CONFIRMATION, RESET, AccountTokens
from tests.authz.helpers import signing_key_pem

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

EMAIL_TTL = 600
RESET_TTL = 120
AUDIENCE = ["peatio", "barong"]


def user(user_id: int, uid: str, email: str) -> User:
    return User(user_id, uid, email, username=None, role="member", level=0, state="pending", otp=False)


USER = user(7, "ID0123456789", "alice@example.com")
OTHER_USER = user(8, "ID9876543210", "bob@example.com")


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.from_pem(signing_key_pem())


@pytest.fixture
async def redis(settings: Any) -> AsyncIterator[Redis]:
    """The suite's Redis, as the service opens it (without the SQL side of ``services``: not needed here)."""
    client = open_redis(settings.redis_url, settings)
    yield client
    await client.aclose()


@pytest.fixture
def make_tokens(redis: Redis, settings: Any, key: SigningKey, clock: Any) -> Any:
    def make(**overrides: Any) -> AccountTokens:
        arguments: dict[str, Any] = dict(
            namespace=settings.redis_namespace,
            signer=key,
            public_keys={key.kid: key.private_key.public_key()},
            issuer="barong",
            audience=AUDIENCE,
            email_ttl=EMAIL_TTL,
            reset_ttl=RESET_TTL,
            clock=clock,
        )
        return AccountTokens(redis, **{**arguments, **overrides})

    return make


@pytest.fixture
def tokens(make_tokens: Any) -> AccountTokens:
    return make_tokens()


def rejection(tokens: AccountTokens, token: str, subject: str) -> str:
    """The one error key ``decode`` answers with; it must be a 422 ``ValidationFailed``."""
    with pytest.raises(ValidationFailed) as caught:
        tokens.decode(token, subject)
    assert status_of(caught.value) == 422
    [key] = caught.value.keys
    return key


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- round trip --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("subject", "ttl"), [(CONFIRMATION, EMAIL_TTL), (RESET, RESET_TTL)])
async def test_token_round_trip_carries_barongs_claims(
    tokens: AccountTokens, key: SigningKey, clock: Any, subject: str, ttl: int
) -> None:
    token = tokens.confirmation_token(USER) if subject == CONFIRMATION else await tokens.reset_token(USER)
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT", "kid": key.kid}
    claims = tokens.decode(token, subject)
    assert claims["sub"] == subject
    assert (claims["email"], claims["uid"]) == (USER.email, USER.uid)
    assert (claims["iss"], claims["aud"]) == ("barong", AUDIENCE)
    assert claims["iat"] == int(clock())
    assert claims["exp"] == int(clock()) + ttl
    assert isinstance(claims["jti"], str) and len(claims["jti"]) == 20
    assert ("reset_token" in claims) is (subject == RESET)


async def test_every_token_has_its_own_jti(tokens: AccountTokens) -> None:
    confirmations = [tokens.decode(tokens.confirmation_token(USER), CONFIRMATION) for _ in range(3)]
    resets = [tokens.decode(await tokens.reset_token(USER), RESET) for _ in range(2)]
    assert len({claims["jti"] for claims in confirmations + resets}) == 5


async def test_token_is_valid_until_just_before_its_expiry(tokens: AccountTokens, clock: Any) -> None:
    token = tokens.confirmation_token(USER)
    clock.advance(EMAIL_TTL - 1)
    assert tokens.decode(token, CONFIRMATION)["uid"] == USER.uid
    clock.advance(1)
    assert rejection(tokens, token, CONFIRMATION) == "jwt.decode_and_verify.expired"


# --- rejections --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    ["", "not-a-jwt", "a.b.c", "a.b", "....", "é.é.é", "e30.e30"],
)
def test_garbage_is_rejected_as_segments(tokens: AccountTokens, garbage: str) -> None:
    assert rejection(tokens, garbage, CONFIRMATION) == "jwt.decode_and_verify.segments"


async def test_expired_reset_token_is_rejected(tokens: AccountTokens, clock: Any) -> None:
    token = await tokens.reset_token(USER)
    clock.advance(RESET_TTL + 1)
    assert rejection(tokens, token, RESET) == "jwt.decode_and_verify.expired"


@pytest.mark.parametrize("kid", ["ours", "unknown"])
def test_token_signed_by_another_key_is_rejected_as_failed(make_tokens: Any, key: SigningKey, kid: str) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer = SimpleNamespace(kid=key.kid if kid == "ours" else "unknown", private_key=stranger)
    forged = make_tokens(signer=signer).confirmation_token(USER)
    assert rejection(make_tokens(), forged, CONFIRMATION) == "jwt.decode_and_verify.failed"


@pytest.mark.parametrize(
    ("overrides", "word"),
    [
        ({"issuer": "someone-else"}, "issuer"),
        ({"audience": ["finex"]}, "audience"),
    ],
)
def test_token_for_another_issuer_or_audience_is_rejected(
    make_tokens: Any, overrides: dict[str, Any], word: str
) -> None:
    token = make_tokens(**overrides).confirmation_token(USER)
    assert rejection(make_tokens(), token, CONFIRMATION) == f"jwt.decode_and_verify.{word}"


async def test_token_of_one_kind_is_not_accepted_as_the_other(tokens: AccountTokens) -> None:
    confirmation = tokens.confirmation_token(USER)
    reset = await tokens.reset_token(USER)
    assert rejection(tokens, confirmation, RESET) == "jwt.decode_and_verify.subject"
    assert rejection(tokens, reset, CONFIRMATION) == "jwt.decode_and_verify.subject"


def test_token_from_the_future_is_rejected(make_tokens: Any, clock: Any) -> None:
    early = make_tokens(clock=lambda: clock() + 3600).confirmation_token(USER)
    assert rejection(make_tokens(), early, CONFIRMATION) == "jwt.decode_and_verify.iat"


def unsigned_variants(tokens: AccountTokens, key: SigningKey) -> dict[str, str]:
    """The claims of a genuine token re-sent unsigned (``alg: none``) and HMAC-signed (HS256)."""
    claims = jwt.decode(tokens.confirmation_token(USER), options={"verify_signature": False})
    header = b64(orjson.dumps({"alg": "none", "typ": "JWT", "kid": key.kid}))
    none = f"{header}.{b64(orjson.dumps(claims))}."
    hs256 = jwt.encode(claims, "a-shared-secret-of-at-least-32-bytes!", algorithm="HS256")
    return {"none": none, "HS256": hs256}


@pytest.mark.parametrize("algorithm", ["none", "HS256"])
def test_token_not_signed_with_rs256_is_rejected(
    tokens: AccountTokens, key: SigningKey, algorithm: str
) -> None:
    token = unsigned_variants(tokens, key)[algorithm]
    assert rejection(tokens, token, CONFIRMATION) == "jwt.decode_and_verify.algorithm"


@pytest.mark.parametrize("missing", ["exp", "iat", "jti", "sub"])
def test_token_without_a_required_claim_is_rejected(
    key: SigningKey, tokens: AccountTokens, missing: str
) -> None:
    claims = jwt.decode(tokens.confirmation_token(USER), options={"verify_signature": False})
    del claims[missing]
    token = jwt.encode(claims, key.private_key, algorithm="RS256")
    assert rejection(tokens, token, CONFIRMATION) == "jwt.decode_and_verify.claim"


@pytest.mark.parametrize("missing", ["uid", "email"])
def test_token_without_uid_or_email_is_rejected(key: SigningKey, tokens: AccountTokens, missing: str) -> None:
    claims = jwt.decode(tokens.confirmation_token(USER), options={"verify_signature": False})
    del claims[missing]
    token = jwt.encode(claims, key.private_key, algorithm="RS256")
    assert rejection(tokens, token, CONFIRMATION) == "jwt.decode_and_verify.claim"


# --- single use --------------------------------------------------------------------------------------


async def test_token_can_be_claimed_once(tokens: AccountTokens) -> None:
    claims = tokens.decode(tokens.confirmation_token(USER), CONFIRMATION)
    assert await tokens.claim(claims) is True
    assert await tokens.claim(claims) is False
    other = tokens.decode(tokens.confirmation_token(USER), CONFIRMATION)
    assert await tokens.claim(other) is True  # another token of the same user is unaffected


async def test_concurrent_claims_let_exactly_one_through(tokens: AccountTokens) -> None:
    claims = tokens.decode(await tokens.reset_token(USER), RESET)
    results = await asyncio.gather(*(tokens.claim(claims) for _ in range(10)))
    assert sorted(results) == [False] * 9 + [True]


async def test_released_token_can_be_claimed_again(tokens: AccountTokens) -> None:
    claims = tokens.decode(tokens.confirmation_token(USER), CONFIRMATION)
    assert await tokens.claim(claims)
    await tokens.release(claims)
    assert await tokens.claim(claims) is True
    assert await tokens.claim(claims) is False


@pytest.mark.parametrize(("subject", "ttl"), [(CONFIRMATION, EMAIL_TTL), (RESET, RESET_TTL)])
async def test_claim_is_kept_for_the_tokens_lifetime(
    tokens: AccountTokens, redis: Redis, settings: Any, subject: str, ttl: int
) -> None:
    token = tokens.confirmation_token(USER) if subject == CONFIRMATION else await tokens.reset_token(USER)
    claims = tokens.decode(token, subject)
    await tokens.claim(claims)
    remaining = await redis.ttl(f"{settings.redis_namespace}:used_jti:{claims['jti']}")
    assert ttl - 5 <= remaining <= ttl


async def test_claims_are_kept_apart_by_namespace(make_tokens: Any, settings: Any) -> None:
    first, second = make_tokens(), make_tokens(namespace=f"{settings.redis_namespace}:other")
    claims = first.decode(first.confirmation_token(USER), CONFIRMATION)
    assert await first.claim(claims) is True
    assert await second.claim(claims) is True


# --- reset tokens: only the newest is current --------------------------------------------------------


async def test_newest_reset_token_is_current(tokens: AccountTokens) -> None:
    claims = tokens.decode(await tokens.reset_token(USER), RESET)
    assert await tokens.reset_is_current(claims) is True


async def test_newer_reset_request_invalidates_older_tokens(tokens: AccountTokens) -> None:
    older = tokens.decode(await tokens.reset_token(USER), RESET)
    newer = tokens.decode(await tokens.reset_token(USER), RESET)
    assert await tokens.reset_is_current(older) is False
    assert await tokens.reset_is_current(newer) is True


async def test_reset_requests_of_other_emails_do_not_interfere(tokens: AccountTokens) -> None:
    mine = tokens.decode(await tokens.reset_token(USER), RESET)
    await tokens.reset_token(OTHER_USER)
    assert await tokens.reset_is_current(mine) is True


async def test_forgotten_reset_is_no_longer_current(tokens: AccountTokens) -> None:
    claims = tokens.decode(await tokens.reset_token(USER), RESET)
    await tokens.forget_reset(USER.email)
    assert await tokens.reset_is_current(claims) is False


async def test_confirmation_claims_are_never_a_current_reset(tokens: AccountTokens) -> None:
    await tokens.reset_token(USER)
    confirmation = tokens.decode(tokens.confirmation_token(USER), CONFIRMATION)
    assert await tokens.reset_is_current(confirmation) is False


async def test_stored_reset_expires_with_the_token(
    tokens: AccountTokens, redis: Redis, settings: Any
) -> None:
    await tokens.reset_token(USER)
    remaining = await redis.ttl(f"{settings.redis_namespace}:reset_password:{USER.email}")
    assert RESET_TTL - 5 <= remaining <= RESET_TTL
