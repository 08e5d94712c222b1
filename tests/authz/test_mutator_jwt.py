"""The upstream JWT (barong-behavior.md §2.8 with decisions.md), as minted by the decision endpoint.

Every token is verified with pyjwt against ``/.well-known/jwks.json``.  Signed tokens are cached per subject,
credential (session or API key) and key id and reused until 90 % of their lifetime has passed; the clock is
the injected one.
"""

from __future__ import annotations

import re
from typing import Any

import jwt
import pytest

from authz.settings import Settings
from identity.sessions import session_hash
from tests.authz.helpers import (
    PRIVATE_PATH,
    announcer,
    api_key_headers,
    bearer_claims,
    cookie_headers,
    decide,
    fast_settings,
    new_user,
    now_ms,
    open_session,
    start_client,
)

CLAIMS = {
    "uid",
    "username",
    "email",
    "referral_id",
    "role",
    "level",
    "state",
    "iat",
    "exp",
    "sub",
    "iss",
    "aud",
    "jti",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The conftest settings with a signing key shared by every app of the run (key generation is slow)."""
    return fast_settings(settings)


@pytest.fixture
async def member(services: Any) -> Any:
    referrer = await new_user(services)
    user = await new_user(services, otp=True)
    return await services.users.update(user.uid, referral_id=referrer.id, username="trader1", level=2)


async def authorization(client: Any, headers: dict[str, str]) -> str:
    status, _, answer = await decide(client, "GET", PRIVATE_PATH, headers)
    assert status == 200
    return str(answer["Authorization"])


async def test_token_carries_barongs_claims_and_verifies_against_the_jwks(
    client: Any, services: Any, clock: Any, member: Any
) -> None:
    cookie, _ = await open_session(services, member, clock)
    header = await authorization(client, cookie_headers(cookie))
    claims = await bearer_claims(client, header)
    assert set(claims) == CLAIMS | {"sid"}
    assert claims["sid"] == session_hash(cookie)  # the session it was minted for
    assert {k: claims[k] for k in ("uid", "username", "email", "referral_id", "role", "level", "state")} == {
        "uid": member.uid,
        "username": "trader1",
        "email": member.email,
        "referral_id": member.referral_id,
        "role": "member",
        "level": 2,
        "state": "active",
    }
    assert claims["iat"] == int(clock.now)
    assert claims["exp"] == claims["iat"] + 300  # AUTHZ_JWT_EXPIRE_TIME default
    assert (claims["sub"], claims["iss"], claims["aud"]) == ("session", "barong", ["peatio", "barong"])
    assert re.fullmatch(r"[0-9a-f]{20}", claims["jti"])
    # The same claims whichever credential the subject used, but the one naming that credential.
    key = await services.api_keys.create(holder_id=member.id)
    by_key = await bearer_claims(client, await authorization(client, api_key_headers(key, now_ms(clock))))
    assert set(by_key) == CLAIMS | {"api_kid"} and by_key["api_kid"] == key.kid
    assert {k: by_key[k] for k in CLAIMS - {"jti"}} == {k: claims[k] for k in CLAIMS - {"jti"}}


async def test_token_header_names_the_published_key(
    client: Any, services: Any, clock: Any, member: Any
) -> None:
    cookie, _ = await open_session(services, member, clock)
    token = (await authorization(client, cookie_headers(cookie))).split(" ")[1]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    assert [key["kid"] for key in jwks["keys"]] == [header["kid"]]
    assert {(key["kty"], key["alg"], key["use"]) for key in jwks["keys"]} == {("RSA", "RS256", "sig")}
    assert "d" not in jwks["keys"][0]  # public half only


async def test_issuer_audience_and_lifetime_are_configurable(
    aiohttp_client: Any, settings: Settings, services: Any, clock: Any, member: Any
) -> None:
    client = await start_client(
        aiohttp_client,
        settings,
        clock,
        jwt_issuer="authz.test",
        jwt_audience=("upstream",),
        jwt_expire_time=3600,
    )
    cookie, _ = await open_session(services, member, clock)
    header = await authorization(client, cookie_headers(cookie))
    claims = await bearer_claims(client, header, issuer="authz.test", audience="upstream")
    assert claims["aud"] == ["upstream"]
    assert claims["exp"] - claims["iat"] == 3600
    with pytest.raises(jwt.InvalidAudienceError):
        await bearer_claims(client, header, issuer="authz.test", audience="peatio")


async def test_token_is_reused_until_90_percent_of_its_lifetime_then_signed_again(
    client: Any, services: Any, clock: Any, member: Any
) -> None:
    cookie, _ = await open_session(services, member, clock)
    first = await authorization(client, cookie_headers(cookie))
    issued = (await bearer_claims(client, first))["iat"]
    assert await authorization(client, cookie_headers(cookie)) == first
    clock.advance(269)  # 300 s lifetime: reused until 270 s
    assert await authorization(client, cookie_headers(cookie)) == first
    clock.advance(1)
    renewed = await authorization(client, cookie_headers(cookie))
    assert renewed != first
    # The clock is ahead of the wall clock now: let pyjwt accept an iat in its future.
    claims = await bearer_claims(client, renewed, leeway=600)
    assert claims["iat"] == issued + 270 == int(clock.now)
    assert claims["jti"] != (await bearer_claims(client, first, leeway=600))["jti"]
    assert await authorization(client, cookie_headers(cookie)) == renewed


async def test_reused_token_keeps_at_least_a_tenth_of_its_lifetime(
    client: Any, services: Any, clock: Any, member: Any
) -> None:
    cookie, _ = await open_session(services, member, clock)
    first = await authorization(client, cookie_headers(cookie))
    clock.advance(269.9)
    assert await authorization(client, cookie_headers(cookie)) == first
    exp = (await bearer_claims(client, first))["exp"]
    assert exp - clock.now >= 30 - 0.1 - 1  # whole-second iat: at most one second less than 10 %


async def test_each_subject_gets_its_own_token(client: Any, services: Any, clock: Any, member: Any) -> None:
    other = await new_user(services)
    mine, _ = await open_session(services, member, clock)
    theirs, _ = await open_session(services, other, clock)
    a = await bearer_claims(client, await authorization(client, cookie_headers(mine)))
    b = await bearer_claims(client, await authorization(client, cookie_headers(theirs)))
    assert (a["uid"], b["uid"]) == (member.uid, other.uid)
    assert a["jti"] != b["jti"]


async def test_changed_claims_are_signed_at_once_not_served_from_the_cache(
    client: Any, services: Any, clock: Any, member: Any
) -> None:
    cookie, _ = await open_session(services, member, clock)
    before = await authorization(client, cookie_headers(cookie))
    await services.users.update(member.uid, level=3, state="pending")
    await announcer(client).user_changed(member.uid)
    after = await authorization(client, cookie_headers(cookie))
    assert after != before
    claims = await bearer_claims(client, after)
    assert (claims["level"], claims["state"]) == (3, "pending")
