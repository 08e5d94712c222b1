"""Login for tokens (``POST /v1/oauth``), refresh (``PUT /v1/oauth``), the session list (``GET /v1/sessions``),
revocation (``DELETE /v1/session``) and ``GET /v1/version``, with seed 001's paths as aliases."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
import pytest

from tests.identity.financelime.helpers import DEVICE, PATH_SETS, SEED_000, Api, error_of, headers
from tests.identity.helpers import login as cookie_login
from tests.identity.helpers import with_cookie, wrong_totp

PROTECTED = "/api/v2/auth/api/v2/peatio/account/balances"


# Behaviour decided before storage matters: one backend is enough (the journey runs on both).
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
@pytest.mark.parametrize("slash", [False, True], ids=["bare", "slash"])
@pytest.mark.parametrize("paths", sorted(PATH_SETS))
async def test_every_operation_on_both_path_sets(
    api_client: Any, make_user: Any, paths: str, slash: bool
) -> None:
    account = await make_user()
    api = Api(api_client, PATH_SETS[paths], slash=slash)
    grant = await api.login(account.user.email, account.password)
    assert list(grant) == ["accessToken", "refreshToken", "sessionID"]
    refreshed = await api.call("refresh", {"refreshToken": grant["refreshToken"]})
    assert refreshed.status == 200
    renewed = await refreshed.json()
    assert renewed["sessionID"] == grant["sessionID"]
    listed = await api.call("sessions", token=renewed["accessToken"])
    assert [s["sessionID"] for s in await listed.json()] == [grant["sessionID"]]
    assert (await api.call("revoke", {"sessionID": ""}, token=renewed["accessToken"])).status == 204
    assert (await api.call("sessions", token=renewed["accessToken"])).status == 401
    version = await api.call("version")
    assert version.status == 200
    body = await version.json()
    assert set(body) == {"number", "build"} and body["number"]


async def test_the_access_token_is_a_standard_jwt_of_its_own_kind(api_client: Any, make_user: Any) -> None:
    account = await make_user()
    grant = await Api(api_client, SEED_000).login(account.user.email, account.password)
    jwks = await (await api_client.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(grant["accessToken"])
    assert header["typ"] == "at+jwt"
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == header["kid"]))
    claims = jwt.decode(grant["accessToken"], key.key, algorithms=["RS256"], options={"verify_aud": False})
    assert (
        claims["sub"] == "access"
        and claims["uid"] == account.user.uid
        and claims["sid"] == grant["sessionID"]
    )
    assert claims["exp"] - claims["iat"] == 900
    assert "aud" not in claims  # upstream verifiers (aud peatio/barong) refuse it
    assert len(grant["refreshToken"]) == 43 and "." not in grant["refreshToken"]  # opaque, not a JWT


async def test_login_failures(api_client: Any, make_user: Any) -> None:
    api = Api(api_client, SEED_000)
    account = await make_user()
    wrong = await api.call("login", {"email": account.user.email, "password": "Wrong-Passw0rd"})
    assert await error_of(wrong) == (404, "USER_NOT_FOUND")
    unknown = await api.call("login", {"email": "nobody@example.com", "password": "Secret-Passw0rd"})
    assert await error_of(unknown) == (404, "USER_NOT_FOUND")
    banned = await make_user(state="banned")
    refused = await api.call("login", {"email": banned.user.email, "password": banned.password})
    assert await error_of(refused) == (403, "USER_NOT_ACTIVE")


async def test_login_with_2fa_needs_the_code(api_client: Any, make_user: Any, clock: Any) -> None:
    from identity.totp import code_at

    api = Api(api_client, SEED_000)
    account = await make_user(otp=True)
    body = {"email": account.user.email, "password": account.password, "device": DEVICE}
    assert await error_of(await api.call("login", body)) == (401, "OTP_REQUIRED")
    bad = await api.call("login", {**body, "otpCode": wrong_totp(account.otp_secret, clock.now)})
    assert await error_of(bad) == (403, "INVALID_OTP")
    code = code_at(account.otp_secret, clock.now)
    assert (await api.call("login", {**body, "otpCode": code})).status == 200
    reused = await api.call("login", {**body, "otpCode": code})
    assert await error_of(reused) == (403, "INVALID_OTP")


@SQLITE_ONLY
async def test_failed_logins_are_throttled(make_client: Any, make_user: Any) -> None:
    client = await make_client(login_max_attempts_account=2)
    api = Api(client, SEED_000)
    account = await make_user()
    for _ in range(2):
        await api.call("login", {"email": account.user.email, "password": "Wrong-Passw0rd"})
    throttled = await api.call("login", {"email": account.user.email, "password": account.password})
    assert await error_of(throttled) == (429, "TOO_MANY_ATTEMPTS")
    assert int(throttled.headers["Retry-After"]) > 0


BAD_LOGINS = [
    pytest.param({"password": "Secret-Passw0rd"}, id="no-email"),
    pytest.param({"email": "a@example.com"}, id="no-password"),
    pytest.param({"email": "ab", "password": "Secret-Passw0rd"}, id="short-email"),
    pytest.param({"email": "a@example.com", "password": "ab"}, id="short-password"),
    pytest.param({"email": "a@example.com", "password": "x" * 256}, id="long-password"),
    pytest.param({"email": "a@example.com", "password": 12345678}, id="password-number"),
    pytest.param(
        {"email": "a@example.com", "password": "Secret-Passw0rd", "clientID": "x" * 33}, id="long-client"
    ),
    pytest.param(
        {"email": "a@example.com", "password": "Secret-Passw0rd", "device": "phone"}, id="device-text"
    ),
    pytest.param(
        {"email": "a@example.com", "password": "Secret-Passw0rd", "device": {"height": "x"}}, id="height"
    ),
    pytest.param(
        {"email": "a@example.com", "password": "Secret-Passw0rd", "device": {"width": 99999}}, id="width"
    ),
    pytest.param(
        {"email": "a@example.com", "password": "Secret-Passw0rd", "device": {"platform": 1}}, id="plat"
    ),
]


@SQLITE_ONLY
@pytest.mark.parametrize("body", BAD_LOGINS)
async def test_bad_logins_are_400(api_client: Any, body: Any) -> None:
    response = await api_client.post("/v1/oauth", json=body, headers=headers())
    assert await error_of(response) == (400, "BAD_PARAMETERS")


async def test_a_refresh_token_is_good_once_and_its_reuse_ends_the_session(
    api_client: Any, make_user: Any
) -> None:
    api = Api(api_client, SEED_000)
    account = await make_user()
    first = await api.login(account.user.email, account.password)
    second = await (await api.call("refresh", {"refreshToken": first["refreshToken"]})).json()
    assert second["refreshToken"] != first["refreshToken"]
    assert second["accessToken"] != first["accessToken"]
    assert (await api_client.get(PROTECTED, headers=headers(second["accessToken"]))).status == 200
    reused = await api.call("refresh", {"refreshToken": first["refreshToken"]})
    assert await error_of(reused) == (404, "USER_NOT_FOUND")
    # Someone else held that token: the session is over for both holders.
    after = await api.call("refresh", {"refreshToken": second["refreshToken"]})
    assert await error_of(after) == (404, "USER_NOT_FOUND")
    denied = await api_client.get(PROTECTED, headers=headers(second["accessToken"]))
    assert await denied.json() == {"errors": ["authz.invalid_session"]}


async def test_concurrent_refreshes_with_one_token_rotate_once(api_client: Any, make_user: Any) -> None:
    api = Api(api_client, SEED_000)
    account = await make_user()
    grant = await api.login(account.user.email, account.password)
    answers = await asyncio.gather(
        *(api.call("refresh", {"refreshToken": grant["refreshToken"]}) for _ in range(5))
    )
    assert sorted(a.status for a in answers) == [200, 404, 404, 404, 404]


async def test_refresh_failures(api_client: Any, make_user: Any, services: Any) -> None:
    api = Api(api_client, SEED_000)
    assert await error_of(await api.call("refresh", {})) == (400, "BAD_PARAMETERS")
    assert await error_of(await api.call("refresh", {"refreshToken": 7})) == (400, "BAD_PARAMETERS")
    malformed = await api.call("refresh", {"refreshToken": "eyJhbGciOiJIUzI1NiJ9.e30.sig"})
    assert await error_of(malformed) == (400, "BAD_REFRESH_TOKEN")
    unknown = await api.call("refresh", {"refreshToken": "A" * 43})
    assert await error_of(unknown) == (404, "USER_NOT_FOUND")
    account = await make_user()
    grant = await api.login(account.user.email, account.password)
    await services.users.update(account.user.uid, state="banned")
    banned = await api.call("refresh", {"refreshToken": grant["refreshToken"]})
    assert await error_of(banned) == (404, "USER_NOT_FOUND")


async def test_a_session_idle_longer_than_the_refresh_lifetime_ends(
    make_client: Any, make_user: Any, clock: Any
) -> None:
    client = await make_client(access_token_expire_time=60, refresh_token_expire_time=600)
    api = Api(client, SEED_000)
    account = await make_user()
    grant = await api.login(account.user.email, account.password)
    clock.advance(300)
    grant = await (await api.call("refresh", {"refreshToken": grant["refreshToken"]})).json()
    clock.advance(300)  # 600 s after login, but 300 s after the refresh: still alive
    grant = await (await api.call("refresh", {"refreshToken": grant["refreshToken"]})).json()
    assert grant["accessToken"]
    clock.advance(601)
    expired = await api.call("refresh", {"refreshToken": grant["refreshToken"]})
    assert await error_of(expired) == (404, "USER_NOT_FOUND")


async def test_an_expired_access_token_is_401(make_client: Any, make_user: Any, clock: Any) -> None:
    client = await make_client(access_token_expire_time=60)
    api = Api(client, SEED_000)
    account = await make_user()
    grant = await api.login(account.user.email, account.password)
    clock.advance(60 + 31)  # past the lifetime and the 30 s leeway
    assert await error_of(await api.call("sessions", token=grant["accessToken"])) == (401, "401 Unauthorized")
    denied = await client.get(PROTECTED, headers=headers(grant["accessToken"]))
    assert await denied.json() == {"errors": ["authz.invalid_access_token"]}


async def test_the_list_holds_browser_sessions_too(api_client: Any, make_user: Any) -> None:
    api = Api(api_client, SEED_000)
    account = await make_user()
    cookie, _ = await cookie_login(api_client, account)
    grant = await api.login(account.user.email, account.password)
    other = await make_user()
    await api.login(other.user.email, other.password)
    sessions = await (await api.call("sessions", token=grant["accessToken"])).json()
    assert len(sessions) == 2
    browser = next(s for s in sessions if s["sessionID"] != grant["sessionID"])
    assert browser["platform"].startswith("Mozilla/5.0")
    # Revoking the browser session through the token API logs the browser out.
    assert (
        await api.call("revoke", {"sessionID": browser["sessionID"]}, token=grant["accessToken"])
    ).status == 204
    assert (await api_client.get(PROTECTED, headers=with_cookie(cookie))).status == 401
    # ...and Barong's logout ends a token session as well.
    cookie, _ = await cookie_login(api_client, account)
    second = await api.login(account.user.email, account.password)
    assert (
        await api.call("revoke", {"sessionID": second["sessionID"]}, token=grant["accessToken"])
    ).status == 204
    assert (await api.call("sessions", token=second["accessToken"])).status == 401


async def test_revocation_is_idempotent_and_limited_to_the_callers_sessions(
    api_client: Any, make_user: Any
) -> None:
    api = Api(api_client, SEED_000)
    mine, theirs = await make_user(), await make_user()
    grant = await api.login(mine.user.email, mine.password)
    other = await api.login(theirs.user.email, theirs.password)
    assert (
        await api.call("revoke", {"sessionID": other["sessionID"]}, token=grant["accessToken"])
    ).status == 204
    assert (await api.call("sessions", token=other["accessToken"])).status == 200  # untouched
    assert (await api.call("revoke", {"sessionID": "0" * 64}, token=grant["accessToken"])).status == 204
    for bad in ({"sessionID": "abc"}, {"sessionID": "Z" * 64}, {"sessionID": 12}, {"sessionID": None}, {}):
        response = await api.call("revoke", bad, token=grant["accessToken"])
        assert await error_of(response) == (400, "BAD_PARAMETERS")
    assert (
        await api.call("revoke", {"sessionID": grant["sessionID"]}, token=grant["accessToken"])
    ).status == 204
    assert (
        await api.call("revoke", {"sessionID": grant["sessionID"]}, token=grant["accessToken"])
    ).status == 401


@SQLITE_ONLY
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Bearer eyJhbGciOiJub25lIn0.e30."],
)
async def test_the_session_endpoints_need_a_valid_bearer(api_client: Any, authorization: str | None) -> None:
    extra = {} if authorization is None else {"Authorization": authorization}
    for operation in ("sessions", "revoke"):
        method, path = SEED_000[operation]
        response = await api_client.request(
            method, path, json={"sessionID": ""}, headers={**headers(), **extra}
        )
        assert await error_of(response) == (401, "401 Unauthorized")


async def test_behind_a_gateway_the_upstream_jwt_names_the_session(api_client: Any, make_user: Any) -> None:
    """Envoy swaps the access token for the decision endpoint's JWT: the API accepts that one too."""
    api = Api(api_client, SEED_000)
    account = await make_user()
    grant = await api.login(account.user.email, account.password)
    decision = await api_client.get("/api/v2/auth/v1/sessions", headers=headers(grant["accessToken"]))
    assert decision.status == 200, await decision.text()
    upstream = decision.headers["Authorization"].removeprefix("Bearer ")
    assert jwt.decode(upstream, options={"verify_signature": False})["sid"] == grant["sessionID"]
    listed = await api.call("sessions", token=upstream)
    assert [s["sessionID"] for s in await listed.json()] == [grant["sessionID"]]
    assert (await api.call("revoke", {"sessionID": ""}, token=upstream)).status == 204
    assert (await api.call("sessions", token=grant["accessToken"])).status == 401


async def test_version_and_router_errors_speak_the_apis_shape(api_client: Any) -> None:
    assert await error_of(await api_client.get("/v1/version")) == (400, "BAD_PARAMETERS")  # no request id
    assert await error_of(await api_client.get("/v1/nothing", headers=headers())) == (404, "404 Not Found")
    wrong_method = await api_client.patch("/v1/oauth", headers=headers())
    assert await error_of(wrong_method) == (405, "405 Method Not Allowed")
    response = await api_client.get("/v1/version", headers=headers())
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
