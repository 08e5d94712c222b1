"""Captcha and Auth0 through the whole app, against local servers playing the providers
(barong-behavior.md §3.6 and §4.1): Google's siteverify, Geetest's register.php/validate.php and an Auth0
tenant's JWKS endpoint.

Parameter and provider checks run on SQLite only; the Auth0 account creation (SQL: user, label, level)
runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from identity.labels import SqlLabelRepository
from tests.identity.helpers import LOGIN, LOGIN_ALIAS, browser, cheap_argon2, decision_status

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

USERS = "/api/v2/barong/identity/users"
AUTH0 = f"{LOGIN}/auth0"
AUTH0_ALIAS = f"{LOGIN_ALIAS}/auth0"
STRONG = "Correct-Horse-Battery-9"
ENDPOINTS = ("user_create", "session_create", "password_reset", "email_confirmation")

SECRET = "recaptcha-s3cret"
GOOD, BAD = "token-google-accepts", "token-google-rejects"
GT_ID = "0123456789abcdef0123456789abcdef"
GT_KEY = "geetest-private-key"
CHALLENGE = "c" * 32
SECCODE = "9c2e0d3b3d5e4a1f|jordan"

DOMAIN = "tenant.eu.auth0.com"
CLIENT_ID = "client-123"
KID = "key-1"
INVALID_PARAMS = {"errors": ["identity.session.auth0.invalid_params"]}

USER_WITH_FULL_INFO = {
    "email", "uid", "role", "level", "otp", "state", "referral_uid", "data", "username",
    "labels", "phones", "profiles", "data_storages", "created_at", "updated_at",
}  # fmt: skip

# Generated once: RSA key generation is the slow part of this file.
TENANT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
FORGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def solved(**override: Any) -> dict[str, Any]:
    """A Geetest response as the widget posts it after a successful solve."""
    return {
        "geetest_challenge": CHALLENGE,
        "geetest_validate": md5(GT_KEY + "geetest" + CHALLENGE),
        "geetest_seccode": SECCODE,
        **override,
    }


@dataclass
class FakeProviders:
    """The providers' endpoints, recording what the app sent them."""

    base: str = ""
    siteverify_seen: list[dict[str, str]] = field(default_factory=list)
    register_seen: list[dict[str, str]] = field(default_factory=list)
    validate_seen: list[dict[str, str]] = field(default_factory=list)
    jwks_hits: int = 0

    async def siteverify(self, request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        self.siteverify_seen.append(form)
        return web.json_response({"success": form.get("response") == GOOD})

    async def register(self, request: web.Request) -> web.Response:
        self.register_seen.append(dict(request.query))
        return web.json_response({"challenge": CHALLENGE})

    async def validate(self, request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        self.validate_seen.append(form)
        return web.json_response({"seccode": md5(form.get("seccode", ""))})

    async def jwks(self, request: web.Request) -> web.Response:
        self.jwks_hits += 1
        public = RSAAlgorithm.to_jwk(TENANT_KEY.public_key(), as_dict=True)
        return web.json_response({"keys": [{**public, "kid": KID, "use": "sig", "alg": "RS256"}]})


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_argon2(monkeypatch)


@pytest.fixture
async def providers(aiohttp_server: Any) -> FakeProviders:
    fake = FakeProviders()
    app = web.Application()
    app.router.add_post("/recaptcha/api/siteverify", fake.siteverify)
    app.router.add_get("/register.php", fake.register)
    app.router.add_post("/validate.php", fake.validate)
    app.router.add_get("/.well-known/jwks.json", fake.jwks)
    server = await aiohttp_server(app, host="127.0.0.1")
    fake.base = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
def recaptcha_client(make_client: Any, providers: FakeProviders) -> Any:
    async def make(**changes: Any) -> Any:
        return await make_client(
            captcha="recaptcha",
            recaptcha_site_key="site-key",
            recaptcha_secret_key=SECRET,
            recaptcha_verify_url=f"{providers.base}/recaptcha/api/siteverify",
            **changes,
        )

    return make


@pytest.fixture
async def geetest_client(make_client: Any, providers: FakeProviders) -> Any:
    return await make_client(
        captcha="geetest", geetest_id=GT_ID, geetest_key=GT_KEY, geetest_api_url=providers.base
    )


@pytest.fixture
async def auth0_client(make_client: Any, providers: FakeProviders) -> Any:
    return await make_client(
        auth0_domain=DOMAIN,
        auth0_client_id=CLIENT_ID,
        auth0_jwks_url=f"{providers.base}/.well-known/jwks.json",
    )


def login_body(account: Any, **extra: Any) -> dict[str, Any]:
    return {"email": account.user.email, "password": account.password, **extra}


async def answer(response: Any) -> tuple[int, Any]:
    return response.status, await response.json()


# --- reCAPTCHA ----------------------------------------------------------------------------------------


@SQLITE_ONLY
async def test_recaptcha_login_without_response_is_required(
    recaptcha_client: Any, providers: FakeProviders, make_user: Any
) -> None:
    client = await recaptcha_client()
    account = await make_user()
    for body in (login_body(account), login_body(account, captcha_response="  ")):
        response = await client.post(LOGIN, json=body, headers=browser())
        assert await answer(response) == (400, {"errors": ["identity.captcha.required"]})
        assert "_barong_session" not in response.cookies
    assert providers.siteverify_seen == []


@SQLITE_ONLY
async def test_recaptcha_login_passes_when_google_confirms(
    recaptcha_client: Any, providers: FakeProviders, make_user: Any
) -> None:
    client = await recaptcha_client()
    account = await make_user()
    response = await client.post(LOGIN, json=login_body(account, captcha_response=GOOD), headers=browser())
    assert response.status == 200, await response.text()
    assert (await response.json())["uid"] == account.user.uid
    assert providers.siteverify_seen == [{"secret": SECRET, "response": GOOD}]  # no remoteip
    assert (await decision_status(client, response.cookies["_barong_session"].value))[0] == 200


@SQLITE_ONLY
async def test_recaptcha_login_refused_by_google_is_422(
    recaptcha_client: Any, providers: FakeProviders, make_user: Any
) -> None:
    client = await recaptcha_client()
    account = await make_user()
    response = await client.post(LOGIN, json=login_body(account, captcha_response=BAD), headers=browser())
    assert await answer(response) == (422, {"errors": ["identity.captcha.verification_failed"]})
    assert "_barong_session" not in response.cookies
    assert providers.siteverify_seen == [{"secret": SECRET, "response": BAD}]


@SQLITE_ONLY
async def test_recaptcha_login_with_a_number_is_an_invalid_format(
    recaptcha_client: Any, providers: FakeProviders, make_user: Any
) -> None:
    client = await recaptcha_client()
    account = await make_user()
    response = await client.post(LOGIN, json=login_body(account, captcha_response=12345), headers=browser())
    assert await answer(response) == (422, {"errors": ["identity.session.invalid_captcha_format"]})
    assert providers.siteverify_seen == []


@SQLITE_ONLY
async def test_recaptcha_guards_sign_up(
    recaptcha_client: Any, providers: FakeProviders, services: Any
) -> None:
    client = await recaptcha_client()
    email = "signer@example.com"
    cases = [
        ({}, 400, {"errors": ["identity.captcha.required"]}),
        ({"captcha_response": BAD}, 422, {"errors": ["identity.captcha.verification_failed"]}),
        ({"captcha_response": 7}, 422, {"errors": ["identity.user.invalid_captcha_format"]}),
    ]
    for extra, status, errors in cases:
        body = {"email": email, "password": STRONG, **extra}
        response = await client.post(USERS, json=body, headers=browser())
        assert await answer(response) == (status, errors), extra
    assert await services.users.get_by_email(email) is None

    response = await client.post(
        USERS, json={"email": email, "password": STRONG, "captcha_response": GOOD}, headers=browser()
    )
    assert response.status == 201, await response.text()
    assert (await response.json())["email"] == email
    assert await services.users.get_by_email(email) is not None
    assert providers.siteverify_seen == [
        {"secret": SECRET, "response": BAD},
        {"secret": SECRET, "response": GOOD},
    ]


@SQLITE_ONLY
async def test_login_needs_no_captcha_when_session_create_is_not_protected(
    recaptcha_client: Any, providers: FakeProviders, make_user: Any
) -> None:
    client = await recaptcha_client(captcha_protected_endpoints=("user_create",))
    account = await make_user()
    response = await client.post(LOGIN, json=login_body(account), headers=browser())
    assert response.status == 200, await response.text()
    refused = await client.post(USERS, json={"email": "x@example.com", "password": STRONG}, headers=browser())
    assert await answer(refused) == (400, {"errors": ["identity.captcha.required"]})
    assert providers.siteverify_seen == []


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("path", "endpoint"),
    [("password/generate_code", "password_reset"), ("email/generate_code", "email_confirmation")],
)
async def test_recaptcha_guards_generate_code(
    recaptcha_client: Any, providers: FakeProviders, make_user: Any, path: str, endpoint: str
) -> None:
    client = await recaptcha_client()
    url = f"{USERS}/{path}"
    email = (await make_user(state="pending")).user.email
    missing = await client.post(url, json={"email": email}, headers=browser())
    assert await answer(missing) == (400, {"errors": ["identity.captcha.required"]})
    refused = await client.post(url, json={"email": email, "captcha_response": BAD}, headers=browser())
    assert await answer(refused) == (422, {"errors": ["identity.captcha.verification_failed"]})
    passed = await client.post(url, json={"email": email, "captcha_response": GOOD}, headers=browser())
    assert passed.status == 201, await passed.text()
    assert [seen["response"] for seen in providers.siteverify_seen] == [BAD, GOOD]

    others = tuple(e for e in ENDPOINTS if e != endpoint)
    unguarded = await recaptcha_client(captcha_protected_endpoints=others)
    response = await unguarded.post(url, json={"email": email}, headers=browser())
    assert response.status == 201, await response.text()


# --- Geetest ------------------------------------------------------------------------------------------


@SQLITE_ONLY
async def test_register_geetest_answers_from_geetest_register(
    geetest_client: Any, providers: FakeProviders
) -> None:
    response = await geetest_client.get(f"{USERS}/register_geetest", headers=browser())
    status, body = await answer(response)
    assert status == 200
    assert body == {"gt": GT_ID, "challenge": md5(CHALLENGE + GT_KEY), "new_captcha": 1, "success": 1}
    assert [seen["gt"] for seen in providers.register_seen] == [GT_ID]


@SQLITE_ONLY
async def test_register_geetest_is_404_without_geetest(make_client: Any, providers: FakeProviders) -> None:
    client = await make_client()  # captcha "none"
    for path in (f"{USERS}/register_geetest", "/api/v2/identity/users/register_geetest"):
        response = await client.get(path, headers=browser())
        assert await answer(response) == (404, {"errors": ["identity.captcha.geetest_disabled"]})
    assert providers.register_seen == []


@SQLITE_ONLY
async def test_geetest_sign_up_with_a_solved_captcha(
    geetest_client: Any, providers: FakeProviders, services: Any
) -> None:
    body = {"email": "gee@example.com", "password": STRONG, "captcha_response": solved()}
    response = await geetest_client.post(USERS, json=body, headers=browser())
    assert response.status == 201, await response.text()
    assert (await response.json())["email"] == "gee@example.com"
    [sent] = providers.validate_seen
    assert (sent["seccode"], sent["challenge"], sent["captchaid"]) == (SECCODE, CHALLENGE, GT_ID)
    assert await services.users.get_by_email("gee@example.com") is not None


@SQLITE_ONLY
@pytest.mark.parametrize(
    "response",
    [
        {k: v for k, v in solved().items() if k != "geetest_seccode"},
        {k: v for k, v in solved().items() if k != "geetest_challenge"},
        solved(geetest_validate=None),
        solved(geetest_validate=123),
    ],
    ids=["no-seccode", "no-challenge", "null-validate", "numeric-validate"],
)
async def test_geetest_response_lacking_a_field_is_400(
    geetest_client: Any, providers: FakeProviders, services: Any, response: dict[str, Any]
) -> None:
    body = {"email": "gee@example.com", "password": STRONG, "captcha_response": response}
    answered = await geetest_client.post(USERS, json=body, headers=browser())
    assert await answer(answered) == (400, {"errors": ["identity.captcha.mandatory_fields"]})
    assert providers.validate_seen == []
    assert await services.users.get_by_email("gee@example.com") is None


@SQLITE_ONLY
async def test_geetest_wrong_validate_hash_is_422_without_asking_geetest(
    geetest_client: Any, providers: FakeProviders
) -> None:
    wrong = solved(geetest_validate=md5("x"))
    body = {"email": "gee@example.com", "password": STRONG, "captcha_response": wrong}
    response = await geetest_client.post(USERS, json=body, headers=browser())
    assert await answer(response) == (422, {"errors": ["identity.captcha.verification_failed"]})
    assert providers.validate_seen == []


# --- Auth0 --------------------------------------------------------------------------------------------


def id_token(
    clock: Any,
    email: str | None,
    *,
    verified: bool = True,
    key: rsa.RSAPrivateKey = TENANT_KEY,
    audience: str = CLIENT_ID,
    issuer: str = f"https://{DOMAIN}/",
    lifetime: float = 3600,
    kid: str = KID,
) -> str:
    now = int(clock())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": "auth0|abc123",
        "iat": now - 10,
        "exp": int(now + lifetime),
        "email_verified": verified,
    }
    if email is not None:
        claims["email"] = email
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


async def auth0_login(client: Any, token: Any, path: str = AUTH0) -> Any:
    return await client.post(path, json={"id_token": token}, headers=browser())


@SQLITE_ONLY
async def test_auth0_logs_in_an_existing_user_even_if_not_verified(
    auth0_client: Any, providers: FakeProviders, make_user: Any, clock: Any
) -> None:
    account = await make_user()
    response = await auth0_login(auth0_client, id_token(clock, account.user.email, verified=False))
    assert response.status == 201, await response.text()
    body = await response.json()
    assert set(body) == USER_WITH_FULL_INFO | {"csrf_token"}
    assert (body["uid"], body["email"], body["state"]) == (account.user.uid, account.user.email, "active")
    assert len(body["csrf_token"]) == 20
    assert (await decision_status(auth0_client, response.cookies["_barong_session"].value))[0] == 200
    assert providers.jwks_hits == 1


async def test_auth0_creates_an_active_account_for_a_verified_unknown_email(
    auth0_client: Any, services: Any, clock: Any
) -> None:
    email = "newcomer@example.com"
    response = await auth0_login(auth0_client, id_token(clock, email, verified=True))
    assert response.status == 201, await response.text()
    body = await response.json()
    assert (body["email"], body["role"], body["state"], body["level"]) == (email, "member", "active", 1)
    assert [(label["key"], label["value"], label["scope"]) for label in body["labels"]] == [
        ("email", "verified", "private")
    ]
    user = await services.users.get_by_email(email)
    assert user is not None and (user.uid, user.state, user.level) == (body["uid"], "active", 1)
    labels = await SqlLabelRepository(services.engine).for_user(user.id)
    assert [(label.key, label.value, label.scope) for label in labels] == [("email", "verified", "private")]
    assert (await decision_status(auth0_client, response.cookies["_barong_session"].value))[0] == 200


@SQLITE_ONLY
async def test_auth0_unverified_unknown_email_is_refused_without_an_account(
    auth0_client: Any, services: Any, clock: Any
) -> None:
    response = await auth0_login(auth0_client, id_token(clock, "stranger@example.com", verified=False))
    assert await answer(response) == (401, INVALID_PARAMS)
    assert "_barong_session" not in response.cookies
    assert await services.users.get_by_email("stranger@example.com") is None


@SQLITE_ONLY
async def test_auth0_token_without_email_is_401(auth0_client: Any, services: Any, clock: Any) -> None:
    response = await auth0_login(auth0_client, id_token(clock, None))
    assert await answer(response) == (401, INVALID_PARAMS)
    assert await services.users.count() == 0


@SQLITE_ONLY
@pytest.mark.parametrize(
    "forge",
    [
        lambda clock: id_token(clock, "forged@example.com", key=FORGER_KEY),
        lambda clock: id_token(clock, "forged@example.com", audience="another-client"),
        lambda clock: id_token(clock, "forged@example.com", issuer="https://evil.example.com/"),
        lambda clock: id_token(clock, "forged@example.com", lifetime=-3600),
        lambda clock: id_token(clock, "forged@example.com", kid="unknown-kid"),
        lambda clock: jwt.encode(
            {
                "email": "forged@example.com",
                "email_verified": True,
                "aud": CLIENT_ID,
                "iss": f"https://{DOMAIN}/",
            },
            "shared-secret-guess-it-if-you-can-32b",
            algorithm="HS256",
            headers={"kid": KID},
        ),
        lambda clock: "not.a.jwt",
    ],
    ids=["bad-signature", "wrong-audience", "wrong-issuer", "expired", "unknown-kid", "hs256", "garbage"],
)
async def test_auth0_unverifiable_token_is_422(
    auth0_client: Any, services: Any, clock: Any, forge: Any
) -> None:
    response = await auth0_login(auth0_client, forge(clock))
    assert await answer(response) == (422, INVALID_PARAMS)
    assert "_barong_session" not in response.cookies
    assert await services.users.get_by_email("forged@example.com") is None


@SQLITE_ONLY
async def test_auth0_token_expired_by_the_app_clock_is_422(
    auth0_client: Any, services: Any, clock: Any, make_user: Any
) -> None:
    account = await make_user()
    token = id_token(clock, account.user.email, lifetime=600)
    clock.advance(3600)  # the system clock has not moved: only the app's clock can tell it expired
    response = await auth0_login(auth0_client, token)
    assert await answer(response) == (422, INVALID_PARAMS)


@SQLITE_ONLY
async def test_auth0_missing_id_token_is_422(auth0_client: Any) -> None:
    response = await auth0_client.post(AUTH0, json={}, headers=browser())
    assert await answer(response) == (422, {"errors": ["identity.session.missing_id_token"]})


@SQLITE_ONLY
async def test_auth0_not_configured_is_422(
    make_client: Any, providers: FakeProviders, make_user: Any, clock: Any
) -> None:
    # A JWKS URL but no domain or client id: Auth0 login stays off.
    client = await make_client(auth0_jwks_url=f"{providers.base}/.well-known/jwks.json")
    account = await make_user()
    response = await auth0_login(client, id_token(clock, account.user.email))
    assert await answer(response) == (422, INVALID_PARAMS)
    assert providers.jwks_hits == 0


@SQLITE_ONLY
async def test_auth0_banned_user_is_refused(auth0_client: Any, make_user: Any, clock: Any) -> None:
    account = await make_user(state="banned")
    response = await auth0_login(auth0_client, id_token(clock, account.user.email))
    assert await answer(response) == (401, {"errors": ["identity.session.banned"]})
    assert "_barong_session" not in response.cookies


@SQLITE_ONLY
async def test_auth0_alias_path_works(auth0_client: Any, make_user: Any, clock: Any) -> None:
    account = await make_user()
    response = await auth0_login(auth0_client, id_token(clock, account.user.email), path=AUTH0_ALIAS)
    assert response.status == 201, await response.text()
    assert (await response.json())["uid"] == account.user.uid
    assert (await decision_status(auth0_client, response.cookies["_barong_session"].value))[0] == 200
