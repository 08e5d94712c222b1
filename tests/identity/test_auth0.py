"""Auth0 id_token verification against a local server playing the tenant's JWKS endpoint."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm

from identity.auth0 import Auth0Identity, Auth0Verifier
from identity.errors import Auth0Rejected, ValidationFailed

DOMAIN = "tenant.eu.auth0.com"
ISSUER = f"https://{DOMAIN}/"
CLIENT_ID = "client-123"
INVALID = ["identity.session.auth0.invalid_params"]

# Generated once: RSA key generation is the slow part of this file.
KEY_A = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEY_B = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEY_EVIL = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Clock:
    """Epoch seconds moved by hand, starting in 2023: any check against the system clock fails loudly."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    return {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig", "alg": "RS256"}


def x5c_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    """A JWK carrying only a self-signed certificate, no ``n``/``e``."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return {"kty": "RSA", "kid": kid, "use": "sig", "x5c": [base64.b64encode(der).decode()]}


class FakeTenant:
    """The tenant's ``/.well-known/jwks.json``, counting how often it is fetched."""

    def __init__(self) -> None:
        self.url = ""
        self.jwks: dict[str, Any] = {"keys": [jwk(KEY_A, "a")]}
        self.hits = 0
        self.status = 200
        self.delay = 0.0

    async def jwks_json(self, request: web.Request) -> web.Response:
        self.hits += 1
        await asyncio.sleep(self.delay)
        return web.json_response(self.jwks, status=self.status)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def tenant(aiohttp_server: Any) -> FakeTenant:
    fake = FakeTenant()
    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", fake.jwks_json)
    server = await aiohttp_server(app)
    fake.url = str(server.make_url("/.well-known/jwks.json"))
    return fake


@pytest.fixture
def verifier(http: Any, tenant: FakeTenant, clock: Clock) -> Auth0Verifier:
    return Auth0Verifier(http, domain=DOMAIN, client_id=CLIENT_ID, jwks_url=tenant.url, clock=clock)


def claims(clock: Clock, **override: Any) -> dict[str, Any]:
    now = int(clock.now)
    base = {
        "iss": ISSUER, "aud": CLIENT_ID, "sub": "auth0|42", "iat": now, "exp": now + 3600,
        "email": "alice@example.com", "email_verified": True,
    }
    base.update(override)
    return {k: v for k, v in base.items() if v is not None}


def token(clock: Clock, key: rsa.RSAPrivateKey = KEY_A, kid: str = "a", **override: Any) -> str:
    return jwt.encode(claims(clock, **override), key, algorithm="RS256", headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def assert_invalid(verifier: Auth0Verifier, id_token: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        await verifier.verify(id_token)
    assert err.value.keys == INVALID


async def test_valid_token_gives_the_identity(verifier: Auth0Verifier, clock: Clock) -> None:
    assert verifier.configured
    identity = await verifier.verify(token(clock))
    assert identity == Auth0Identity(email="alice@example.com", email_verified=True, subject="auth0|42")
    await verifier.verify(token(clock, aud=["https://api.example.com", CLIENT_ID]))


async def test_email_verified_defaults_to_false(verifier: Auth0Verifier, clock: Clock) -> None:
    assert (await verifier.verify(token(clock, email_verified=None))).email_verified is False
    assert (await verifier.verify(token(clock, email_verified="true"))).email_verified is False


async def test_x5c_only_jwks_is_understood(verifier: Auth0Verifier, tenant: FakeTenant, clock: Clock) -> None:
    # A broken entry beside it is skipped, not fatal.
    tenant.jwks = {"keys": [{"kty": "RSA", "kid": "z", "x5c": ["bm90IGEgY2VydA=="]}, x5c_jwk(KEY_A, "a")]}
    assert (await verifier.verify(token(clock))).email == "alice@example.com"


@pytest.mark.parametrize(
    "override",
    [
        {"iss": "https://evil.auth0.com/"},
        {"aud": "another-client"},
        {"aud": None},
        {"exp": None},
        {"iat": None},
        {"exp": "tomorrow"},
    ],
)
async def test_wrong_claims_are_invalid(verifier: Auth0Verifier, clock: Clock, override: Any) -> None:
    await assert_invalid(verifier, token(clock, **override))


async def test_expiry_follows_the_injected_clock(verifier: Auth0Verifier, clock: Clock) -> None:
    id_token = token(clock, exp=int(clock.now) + 100)
    clock.now += 150  # within the 60 s leeway
    await verifier.verify(id_token)
    clock.now += 20
    await assert_invalid(verifier, id_token)


@pytest.mark.parametrize("claim", ["iat", "nbf"])
async def test_token_from_the_future_is_invalid(verifier: Auth0Verifier, clock: Clock, claim: str) -> None:
    await verifier.verify(token(clock, **{claim: int(clock.now) + 30}))
    await assert_invalid(verifier, token(clock, **{claim: int(clock.now) + 120}))


async def test_signature_by_another_key_is_invalid(verifier: Auth0Verifier, clock: Clock) -> None:
    await assert_invalid(verifier, token(clock, key=KEY_EVIL, kid="a"))


async def test_alg_none_is_invalid_without_fetching(
    verifier: Auth0Verifier, tenant: FakeTenant, clock: Clock
) -> None:
    unsigned = jwt.encode(claims(clock), None, algorithm="none", headers={"kid": "a"})
    await assert_invalid(verifier, unsigned)
    assert tenant.hits == 0


async def test_hs256_signed_with_the_public_key_is_invalid(verifier: Auth0Verifier, clock: Clock) -> None:
    await verifier.verify(token(clock))  # the key is cached: only the algorithm can stop this token
    pem = KEY_A.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": "a"}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims(clock)).encode())}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    await assert_invalid(verifier, f"{signing_input}.{b64(signature)}")


@pytest.mark.parametrize("garbage", ["abc", "a.b.c", "e30.e30.", "x" * 40])
async def test_malformed_token_is_invalid(verifier: Auth0Verifier, garbage: str) -> None:
    await assert_invalid(verifier, garbage)


async def test_blank_token_is_empty_id_token(verifier: Auth0Verifier, tenant: FakeTenant) -> None:
    for blank in ("", "   "):
        with pytest.raises(ValidationFailed) as err:
            await verifier.verify(blank)
        assert err.value.keys == ["identity.session.empty_id_token"]
    assert tenant.hits == 0


async def test_token_without_email_is_rejected_401(verifier: Auth0Verifier, clock: Clock) -> None:
    for email in (None, 42, ""):
        with pytest.raises(Auth0Rejected) as err:
            await verifier.verify(token(clock, email=email))
        assert err.value.keys == INVALID


async def test_not_configured_is_invalid(http: Any, tenant: FakeTenant, clock: Clock) -> None:
    for domain, client_id in (("", CLIENT_ID), (DOMAIN, "")):
        verifier = Auth0Verifier(http, domain=domain, client_id=client_id, jwks_url=tenant.url, clock=clock)
        assert not verifier.configured
        await assert_invalid(verifier, token(clock))
    assert tenant.hits == 0


async def test_jwks_is_cached_for_its_ttl(verifier: Auth0Verifier, tenant: FakeTenant, clock: Clock) -> None:
    for _ in range(3):
        await verifier.verify(token(clock))
    assert tenant.hits == 1
    clock.now += 601
    await verifier.verify(token(clock))
    assert tenant.hits == 2


async def test_concurrent_verifications_share_one_fetch(
    verifier: Auth0Verifier, tenant: FakeTenant, clock: Clock
) -> None:
    tenant.delay = 0.05
    identities = await asyncio.gather(*(verifier.verify(token(clock)) for _ in range(5)))
    assert {i.email for i in identities} == {"alice@example.com"}
    assert tenant.hits == 1
    # After a rotation too: callers arriving during the refetch wait for it rather than failing.
    tenant.jwks = {"keys": [jwk(KEY_B, "b")]}
    clock.now += 31
    await asyncio.gather(*(verifier.verify(token(clock, key=KEY_B, kid="b")) for _ in range(5)))
    assert tenant.hits == 2


async def test_rotated_key_is_fetched_at_most_every_30_seconds(
    verifier: Auth0Verifier, tenant: FakeTenant, clock: Clock
) -> None:
    await verifier.verify(token(clock))
    tenant.jwks = {"keys": [jwk(KEY_A, "a"), jwk(KEY_B, "b")]}
    await assert_invalid(verifier, token(clock, key=KEY_B, kid="b"))  # too soon after the last fetch
    assert tenant.hits == 1
    clock.now += 31
    await verifier.verify(token(clock, key=KEY_B, kid="b"))
    assert tenant.hits == 2
    clock.now += 31
    await assert_invalid(verifier, token(clock, key=KEY_B, kid="unknown"))
    await assert_invalid(verifier, token(clock, key=KEY_B, kid="unknown"))
    assert tenant.hits == 3


@pytest.mark.parametrize(
    "unusable",
    [
        {"kty": "oct", "kid": "a", "k": b64(b"secret")},
        {**jwk(KEY_A, "a"), "use": "enc"},
        {**jwk(KEY_A, "a"), "alg": "RS512"},
        {"kty": "RSA", "kid": "a", "x5c": ["bm90IGEgY2VydA=="]},
    ],
)
async def test_jwks_without_usable_keys_is_invalid(
    verifier: Auth0Verifier, tenant: FakeTenant, clock: Clock, unusable: dict[str, Any]
) -> None:
    tenant.jwks = {"keys": [unusable]}
    await assert_invalid(verifier, token(clock))


async def test_jwks_server_failing_or_down_is_invalid(
    verifier: Auth0Verifier, tenant: FakeTenant, http: Any, clock: Clock
) -> None:
    tenant.status = 500
    await assert_invalid(verifier, token(clock))
    await assert_invalid(verifier, token(clock))  # no second fetch right away
    assert tenant.hits == 1
    clock.now += 31
    tenant.status = 404
    await assert_invalid(verifier, token(clock))
    assert tenant.hits == 2
    url = f"http://127.0.0.1:{unused_port()}/.well-known/jwks.json"
    verifier = Auth0Verifier(http, domain=DOMAIN, client_id=CLIENT_ID, jwks_url=url, clock=clock)
    await assert_invalid(verifier, token(clock))


async def test_cached_key_outlives_a_failed_refresh(
    verifier: Auth0Verifier, tenant: FakeTenant, clock: Clock
) -> None:
    await verifier.verify(token(clock))
    tenant.status = 503
    clock.now += 601
    await verifier.verify(token(clock))
    await verifier.verify(token(clock))  # without asking the failing server again at once
    assert tenant.hits == 2
    await assert_invalid(verifier, token(clock, key=KEY_B, kid="b"))
    clock.now += 31
    await verifier.verify(token(clock))
    assert tenant.hits == 3


async def test_session_factory_is_accepted(http: Any, tenant: FakeTenant, clock: Clock) -> None:
    verifier = Auth0Verifier(
        lambda: http, domain=DOMAIN, client_id=CLIENT_ID, jwks_url=tenant.url, clock=clock
    )
    assert (await verifier.verify(token(clock))).subject == "auth0|42"
