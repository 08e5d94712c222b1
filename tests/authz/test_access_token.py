"""The access-token authenticator of the decision endpoint: ``Authorization: Bearer <access token>`` from
the token API, checked against its live session, then the same permission check and upstream JWT as a
cookie session."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from authz.keys import SigningKey
from tests.authz.helpers import announcer, signing_key_pem
from tests.authz.test_pipeline import restrict
from tests.identity.financelime.helpers import SEED_000, Api, headers
from tests.identity.helpers import cheap_argon2, with_cookie
from tests.identity.helpers import login as cookie_login

PROTECTED = "/api/v2/auth/api/v2/peatio/account/balances"  # members may use it
ADMIN_ONLY = "/api/v2/auth/api/v2/barong/admin/users"


# Behaviour decided before storage matters: one backend is enough (the journey runs on both).
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: Any) -> None:
    cheap_argon2(monkeypatch)


async def _grant(client: Any, make_user: Any, **user: Any) -> tuple[Any, dict[str, str]]:
    account = await make_user(**user)
    return account, await Api(client, SEED_000).login(account.user.email, account.password)


async def test_an_access_token_is_allowed_like_a_cookie_session(client: Any, make_user: Any) -> None:
    account, grant = await _grant(client, make_user)
    response = await client.post(PROTECTED, headers=headers(grant["accessToken"]))  # no CSRF token needed
    assert response.status == 200
    upstream = response.headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(upstream, options={"verify_signature": False})
    assert claims["sub"] == "session" and claims["uid"] == account.user.uid and claims["role"] == "member"
    assert claims["sid"] == grant["sessionID"]
    assert claims["aud"] == ["peatio", "barong"]


async def test_permissions_apply(client: Any, make_user: Any) -> None:
    _, grant = await _grant(client, make_user)
    denied = await client.get(ADMIN_ONLY, headers=headers(grant["accessToken"]))
    assert denied.status == 401
    assert await denied.json() == {"errors": ["authz.invalid_permission"]}


async def test_a_revocation_takes_effect_at_once(client: Any, make_user: Any) -> None:
    _, grant = await _grant(client, make_user)
    assert (await client.get(PROTECTED, headers=headers(grant["accessToken"]))).status == 200  # now cached
    api = Api(client, SEED_000)
    assert (await api.call("revoke", {"sessionID": ""}, token=grant["accessToken"])).status == 204
    denied = await client.get(PROTECTED, headers=headers(grant["accessToken"]))
    assert await denied.json() == {"errors": ["authz.invalid_session"]}


async def test_a_user_who_may_no_longer_log_in_is_refused(client: Any, make_user: Any, services: Any) -> None:
    account, grant = await _grant(client, make_user)
    assert (await client.get(PROTECTED, headers=headers(grant["accessToken"]))).status == 200
    await services.users.update(account.user.uid, state="locked")
    await announcer(client).user_changed(account.user.uid)
    denied = await client.get(PROTECTED, headers=headers(grant["accessToken"]))
    assert await denied.json() == {"errors": ["authz.user_not_active"]}


@SQLITE_ONLY
async def test_an_upstream_jwt_is_not_an_access_token(client: Any, make_user: Any) -> None:
    account = await make_user()
    cookie, _ = await cookie_login(client, account)
    allowed = await client.get(PROTECTED, headers=with_cookie(cookie))
    upstream = allowed.headers["Authorization"].removeprefix("Bearer ")
    refused = await client.get(PROTECTED, headers=headers(upstream))
    assert await refused.json() == {"errors": ["authz.invalid_access_token"]}


@SQLITE_ONLY
async def test_an_access_token_is_not_an_upstream_jwt(client: Any, make_user: Any) -> None:
    _, grant = await _grant(client, make_user)
    response = await client.get(
        "/api/v2/barong/resource/users/me", headers={"Authorization": f"Bearer {grant['accessToken']}"}
    )
    assert response.status == 401
    assert await response.json() == {"errors": ["jwt.decode_and_verify"]}


def _forged(claims: dict[str, Any], key: Any, algorithm: str, **header: Any) -> str:
    return jwt.encode(claims, key, algorithm=algorithm, headers={"typ": "at+jwt", **header})


@SQLITE_ONLY
async def test_forged_tokens_are_refused(client: Any, make_user: Any) -> None:
    _, grant = await _grant(client, make_user)
    real = jwt.decode(grant["accessToken"], options={"verify_signature": False})
    kid = jwt.get_unverified_header(grant["accessToken"])["kid"]
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    public_pem = jwt.PyJWK(jwks["keys"][0]).key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    stranger = SigningKey.from_pem(signing_key_pem()).private_key
    now = int(time.time())
    forged = {
        "alg none": _unsigned(real, kid),
        "HS256 keyed with the public key": _hmac_token(real, public_pem, kid),
        "another RSA key": _forged(real, stranger, "RS256", kid=kid),
        "an upstream subject": _forged({**real, "sub": "session"}, stranger, "RS256", kid=kid),
        "no session claim": _unsigned({k: v for k, v in real.items() if k != "sid"}, kid),
        "expired": _unsigned({**real, "exp": now - 3600, "iat": now - 4000}, kid),
    }
    for what, token in forged.items():
        response = await client.get(PROTECTED, headers=headers(token))
        assert await response.json() == {"errors": ["authz.invalid_access_token"]}, what


def _hmac_token(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """HS256 over the token keyed with the RSA public key (PyJWT refuses to make one: done by hand)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": kid}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def _unsigned(claims: dict[str, Any], kid: str) -> str:
    return jwt.encode(claims, None, algorithm="none", headers={"typ": "at+jwt", "kid": kid})


@SQLITE_ONLY
async def test_other_authorization_schemes_are_not_the_access_tokens_business(client: Any) -> None:
    response = await client.get(PROTECTED, headers=headers(Authorization="Basic dXNlcjpwYXNz"))
    assert await response.json() == {"errors": ["authz.invalid_session"]}  # the cookie authenticator's answer


async def test_financelime_login_counts_as_a_login_for_blocklogin(
    client: Any, services: Any, make_user: Any
) -> None:
    from identity.restrictions import validate_restriction

    await restrict(client, services, validate_restriction("blocklogin", "ip", "81.2.69.10", "enabled"))
    for path in ("v1/oauth", "v1/oauth/create", "v1/oauth/"):
        refused = await client.post(f"/api/v2/auth/{path}", headers=headers())
        assert refused.status == 401, path
        assert await refused.json() == {"errors": ["authz.restrict.blocklogin"]}
    # Refreshing is not logging in; the token API's public paths pass otherwise.
    assert (await client.put("/api/v2/auth/v1/oauth", headers=headers())).status == 200
