"""The resource API's bearer check: a JWT from the decision endpoint passes, anything else is 401."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from identity.bearer import BearerVerifier
from identity.errors import BearerRejected
from tests.authz.helpers import signing_key_pem
from tests.authz.test_upstream import EACH_TIME_CLAIM_CASE
from tests.resource.helpers import ME, RESOURCE_ALIAS, bearer, jwt_for

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
UNAUTHORIZED = {"errors": ["jwt.decode_and_verify"]}


async def test_a_jwt_from_the_decision_endpoint_opens_the_resource_api(api: Any, make_user: Any) -> None:
    account = await make_user()
    token = await jwt_for(api, account)
    for path in (ME, f"{RESOURCE_ALIAS}/users/me"):
        response = await api.get(path, headers=bearer(token))
        assert response.status == 200, await response.text()
        assert (await response.json())["uid"] == account.user.uid


@SQLITE_ONLY
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer not.a.jwt", "Bearer a.b.c"],
)
async def test_missing_or_malformed_tokens_are_401(api: Any, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await api.get(ME, headers=headers)
    assert response.status == 401
    assert await response.json() == UNAUTHORIZED


@SQLITE_ONLY
async def test_a_deleted_or_banned_user_loses_access(api: Any, make_user: Any, services: Any) -> None:
    account = await make_user()
    token = await jwt_for(api, account)
    await services.users.update(account.user.uid, state="banned")
    response = await api.get(ME, headers=bearer(token))
    assert response.status == 401
    assert await response.json() == UNAUTHORIZED


def _claims(now: float, **changes: Any) -> dict[str, Any]:
    claims = {
        "uid": "ID0000000001",
        "iat": int(now),
        "exp": int(now) + 60,
        "sub": "session",
        "iss": "barong",
        "aud": ["peatio", "barong"],
        "jti": "0123456789abcdef0123",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    "changes",
    [
        {"sub": "confirmation"},
        {"iss": "someone-else"},
        {"aud": ["other"]},
        {"exp": None},
        {"jti": None},
        {"uid": None},
        {"uid": 42},
    ],
)
def test_the_verifier_checks_every_claim(changes: dict[str, Any]) -> None:
    from authz.keys import SigningKey

    key = SigningKey.from_pem(signing_key_pem())
    now = time.time()
    verifier = BearerVerifier({key.kid: key.private_key.public_key()}, issuer="barong", audience=("peatio", "barong"))
    good = jwt.encode(_claims(now), key.private_key, algorithm="RS256", headers={"kid": key.kid})
    assert verifier.claims(f"Bearer {good}")["uid"] == "ID0000000001"
    bad = jwt.encode(_claims(now, **changes), key.private_key, algorithm="RS256", headers={"kid": key.kid})
    with pytest.raises(BearerRejected):
        verifier.claims(f"Bearer {bad}")


def test_expiry_and_issue_time_follow_the_service_clock() -> None:
    from authz.keys import SigningKey

    key = SigningKey.from_pem(signing_key_pem())
    now = [1_000_000.0]
    verifier = BearerVerifier(
        {key.kid: key.private_key.public_key()}, issuer="barong", audience=("barong",), leeway=0, clock=lambda: now[0]
    )
    token = "Bearer " + jwt.encode(_claims(now[0]), key.private_key, algorithm="RS256", headers={"kid": key.kid})
    assert verifier.claims(token)
    now[0] += 61
    with pytest.raises(BearerRejected):
        verifier.claims(token)
    now[0] -= 200  # issued "in the future"
    with pytest.raises(BearerRejected):
        verifier.claims(token)


@EACH_TIME_CLAIM_CASE
def test_time_claims_must_be_numbers_that_hold_now(
    times: Callable[[int], dict[str, Any]], accepted: bool
) -> None:
    from authz.keys import SigningKey

    key = SigningKey.from_pem(signing_key_pem())
    now = 1_000_000
    verifier = BearerVerifier(
        {key.kid: key.private_key.public_key()}, issuer="barong", audience=("barong",), clock=lambda: now
    )
    claims = {**_claims(now), **times(now)}
    token = "Bearer " + jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})
    if accepted:
        assert verifier.claims(token)["uid"] == "ID0000000001"
    else:
        with pytest.raises(BearerRejected):
            verifier.claims(token)


def test_foreign_keys_and_other_algorithms_are_refused() -> None:
    from authz.keys import SigningKey

    key = SigningKey.from_pem(signing_key_pem())
    verifier = BearerVerifier({key.kid: key.private_key.public_key()}, issuer="barong", audience=("barong",))
    now = time.time()
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(_claims(now), stranger, algorithm="RS256", headers={"kid": key.kid})
    unsigned = jwt.encode(_claims(now), None, algorithm="none")
    public_pem = key.public_pem()
    # HS256 "signed" with the public key: the classic algorithm-confusion forgery.
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    body = b64(json.dumps(_claims(now)).encode())
    mac = b64(hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest())
    confused = f"{head}.{body}.{mac}"
    for token in (forged, unsigned, confused):
        with pytest.raises(BearerRejected):
            verifier.claims(f"Bearer {token}")
