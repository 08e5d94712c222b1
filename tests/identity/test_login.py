"""Logging in and out over the real app (barong-behavior.md §3.1–3.4, with the fixes of decisions.md).

Tests that exercise SQL (user lookup, activities, TOTP step claims, hash upgrades) run on SQLite and
PostgreSQL; tests of parameter handling, cookies and throttling (Redis only) run on SQLite alone to keep
the suite fast.  For the same reason passwords are hashed with argon2id at its lowest cost, except in the
hash-upgrade test.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime
from typing import Any

import bcrypt
import orjson
import pytest

from identity import passwords, totp
from identity.activity_log import ClientInfo
from identity.http.context import IDENTITY
from identity.sessions import session_hash
from tests.identity.helpers import (
    CLIENT_IP,
    LOGIN,
    LOGIN_ALIAS,
    UA,
    browser,
    cheap_argon2,
    decision_status,
    login,
    post_login,
    with_cookie,
    wrong_totp,
)

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

USER_WITH_FULL_INFO = {
    "email", "uid", "role", "level", "otp", "state", "referral_uid", "data", "username",
    "labels", "phones", "profiles", "data_storages", "created_at", "updated_at",
}  # fmt: skip


@pytest.fixture(autouse=True)
def fast_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2id parameters, unless a test parametrises this fixture with False."""
    if getattr(request, "param", True):
        cheap_argon2(monkeypatch)


@pytest.fixture
async def client(make_client: Any) -> Any:
    """Conftest's ``client``, without a cookie jar."""
    return await make_client()


async def activities(services: Any, account: Any) -> list[tuple[str, str, str]]:
    return [(a.topic, a.action, a.result) for a in await services.activities.list(user_id=account.user.id)]


# --- success ----------------------------------------------------------------------------------------


async def test_login_answers_user_with_full_info_and_a_csrf_token(client: Any, make_user: Any) -> None:
    account = await make_user()
    response = await post_login(client, {"email": account.user.email, "password": account.password})
    assert response.status == 200
    body = await response.json()
    assert set(body) == USER_WITH_FULL_INFO | {"csrf_token"}
    assert body["email"] == account.user.email
    assert body["uid"] == account.user.uid and re.fullmatch(r"ID[0-9A-F]{10}", body["uid"])
    assert (body["role"], body["level"], body["state"], body["otp"]) == ("member", 0, "active", False)
    assert body["labels"] == body["phones"] == body["profiles"] == body["data_storages"] == []
    assert re.fullmatch(r"[0-9a-f]{20}", body["csrf_token"])
    for stamp in ("created_at", "updated_at"):  # Barong's format: UTC, to the second
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body[stamp]), body[stamp]
        assert abs(datetime.fromisoformat(body[stamp]).timestamp() - time.time()) < 60
    assert re.fullmatch(r"[0-9a-f]{32}", response.cookies["_barong_session"].value)


@SQLITE_ONLY
async def test_login_alias_path_and_form_body_work(client: Any, make_user: Any) -> None:
    account = await make_user()
    data = {"email": account.user.email, "password": account.password}
    response = await client.post(LOGIN_ALIAS, data=data, headers=browser())
    assert response.status == 200, await response.text()
    assert (await response.json())["uid"] == account.user.uid


@SQLITE_ONLY
async def test_session_cookie_is_httponly_lax_and_site_wide(client: Any, make_user: Any) -> None:
    account = await make_user()
    response = await post_login(client, {"email": account.user.email, "password": account.password})
    [header] = response.headers.getall("Set-Cookie")
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in header.split(";")[1:]}
    assert header.startswith("_barong_session=")
    assert "httponly" in attributes
    assert attributes["samesite"] == "SameSite=Lax"
    assert attributes["path"] == "Path=/"
    assert "secure" not in attributes  # the test settings turn it off for plain HTTP


@SQLITE_ONLY
async def test_session_cookie_is_secure_by_default(make_client: Any, make_user: Any) -> None:
    client = await make_client(session_cookie_secure=True)
    account = await make_user()
    response = await post_login(client, {"email": account.user.email, "password": account.password})
    assert response.status == 200
    assert "secure" in response.headers["Set-Cookie"].lower().split("; ")


async def test_login_opens_a_session_the_decision_endpoint_accepts(client: Any, make_user: Any) -> None:
    account = await make_user()
    cookie, _ = await login(client, account)
    assert (await decision_status(client, cookie))[0] == 200


@SQLITE_ONLY
async def test_pending_user_may_log_in(client: Any, make_user: Any) -> None:
    account = await make_user(state="pending")
    await login(client, account)


# --- parameters -------------------------------------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("body", "keys"),
    [
        ({}, ["identity.session.missing_email", "identity.session.missing_password"]),
        ({"email": "a@example.com"}, ["identity.session.missing_password"]),
        ({"password": "x"}, ["identity.session.missing_email"]),
        ({"email": "", "password": "x"}, ["identity.session.empty_email"]),
        ({"email": "a@example.com", "password": "  "}, ["identity.session.empty_password"]),
        ({"email": "", "password": ""}, ["identity.session.empty_email", "identity.session.empty_password"]),
        ({"email": None, "password": "x"}, ["identity.session.missing_email"]),
        ({"email": ["a@example.com"], "password": "x"}, ["identity.session.invalid_email"]),
        ({"email": "a@example.com", "password": 12345678}, ["identity.session.invalid_password"]),
        ({"email": "a@example.com", "password": "x", "otp_code": [1]}, ["identity.session.invalid_otp_code"]),
        (
            {"email": "a@example.com", "password": "x", "captcha_response": 5},
            ["identity.session.invalid_captcha_format"],
        ),
    ],
)
async def test_invalid_parameters_answer_422_with_every_key(client: Any, body: Any, keys: list[str]) -> None:
    response = await post_login(client, body)
    assert response.status == 422
    assert await response.json() == {"errors": keys}


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("application/json", b"{"),
        ("application/json", b'{"email": "a@example.com", "password": '),
        ("application/json", b"[]"),
        ("application/json", b"null"),
        ("application/json", b'"text"'),
        ("application/json", b"\xff\xfe{}"),
        ("application/json", b'{"email": "\xff", "password": "x"}'),
        ("text/plain", b"not json"),
        ("application/xml", b"<login/>"),
    ],
)
async def test_unreadable_body_answers_400_never_500(client: Any, content_type: str, raw: bytes) -> None:
    response = await client.post(LOGIN, data=raw, headers=browser(**{"Content-Type": content_type}))
    assert response.status == 400, await response.text()
    body = await response.json()
    assert list(body) == ["errors"] and len(body["errors"]) == 1
    assert body["errors"][0].startswith("request.")


# --- credentials and account state ------------------------------------------------------------------


async def test_unknown_email_and_wrong_password_are_indistinguishable(client: Any, make_user: Any) -> None:
    account = await make_user()
    unknown = await post_login(client, {"email": "nobody@example.com", "password": account.password})
    wrong = await post_login(client, {"email": account.user.email, "password": "Wrong-Passw0rd"})
    for response in (unknown, wrong):
        assert response.status == 401
        assert await response.json() == {"errors": ["identity.session.invalid_params"]}
        assert "Set-Cookie" not in response.headers


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("state", "key"),
    [
        ("banned", "identity.session.banned"),
        ("deleted", "identity.session.deleted"),
        ("locked", "identity.session.not_active"),
    ],
)
async def test_account_state_is_revealed_only_after_the_right_password(
    client: Any, make_user: Any, state: str, key: str
) -> None:
    account = await make_user(state=state)
    wrong = await post_login(client, {"email": account.user.email, "password": "Wrong-Passw0rd"})
    assert wrong.status == 401
    assert await wrong.json() == {"errors": ["identity.session.invalid_params"]}
    right = await post_login(client, {"email": account.user.email, "password": account.password})
    assert right.status == 401
    assert await right.json() == {"errors": [key]}
    assert "Set-Cookie" not in right.headers


# --- 2FA --------------------------------------------------------------------------------------------


async def test_two_factor_login_needs_a_fresh_valid_code(client: Any, make_user: Any, clock: Any) -> None:
    account = await make_user(otp=True)
    credentials = {"email": account.user.email, "password": account.password}

    missing = await post_login(client, credentials)
    assert (missing.status, await missing.json()) == (401, {"errors": ["identity.session.missing_otp"]})
    blank = await post_login(client, {**credentials, "otp_code": " "})
    assert (blank.status, await blank.json()) == (401, {"errors": ["identity.session.missing_otp"]})

    bad = await post_login(client, {**credentials, "otp_code": wrong_totp(account.otp_secret, clock.now)})
    assert (bad.status, await bad.json()) == (403, {"errors": ["identity.session.invalid_otp"]})

    code = totp.code_at(account.otp_secret, clock.now)
    good = await post_login(client, {**credentials, "otp_code": code})
    assert good.status == 200, await good.text()
    assert (await good.json())["otp"] is True

    # A right code used twice: refused the way Vault's TOTP engine refuses it for Barong.
    replayed = await post_login(client, {**credentials, "otp_code": code})
    assert (replayed.status, await replayed.json()) == (422, {"errors": ["totp.error"]})

    clock.advance(totp.STEP)
    later = await post_login(client, {**credentials, "otp_code": totp.code_at(account.otp_secret, clock.now)})
    assert later.status == 200, await later.text()


@SQLITE_ONLY
@pytest.mark.parametrize("stored", [None, "v1:not-a-sealed-secret"])
async def test_two_factor_without_a_readable_seed_refuses_every_code(
    client: Any, make_user: Any, services: Any, clock: Any, stored: str | None
) -> None:
    account = await make_user(otp=True)
    await services.users.update(account.user.uid, otp_secret_encrypted=stored)
    code = totp.code_at(account.otp_secret, clock.now)
    response = await post_login(client, {"email": account.user.email, "password": account.password, "otp_code": code})
    assert (response.status, await response.json()) == (403, {"errors": ["identity.session.invalid_otp"]})


@SQLITE_ONLY
async def test_two_factor_code_is_not_asked_before_the_password_is_right(client: Any, make_user: Any) -> None:
    account = await make_user(otp=True)
    response = await post_login(client, {"email": account.user.email, "password": "Wrong-Passw0rd"})
    assert (response.status, await response.json()) == (401, {"errors": ["identity.session.invalid_params"]})


# --- session rotation and logout --------------------------------------------------------------------


async def test_every_login_gets_a_new_session_and_revokes_the_cookie_it_came_with(
    client: Any, make_user: Any
) -> None:
    account = await make_user()
    first, _ = await login(client, account)
    assert (await decision_status(client, first))[0] == 200
    second, _ = await login(client, account, headers=with_cookie(first))
    assert second != first
    assert await decision_status(client, first) == (401, {"errors": ["authz.invalid_session"]})
    assert (await decision_status(client, second))[0] == 200


@SQLITE_ONLY
async def test_login_never_promotes_a_planted_cookie(client: Any, make_user: Any) -> None:
    account = await make_user()
    planted = "0123456789abcdef0123456789abcdef"
    cookie, _ = await login(client, account, headers=with_cookie(planted))
    assert cookie != planted
    assert await decision_status(client, planted) == (401, {"errors": ["authz.invalid_session"]})


async def test_logout_destroys_the_session(client: Any, make_user: Any, services: Any) -> None:
    account = await make_user()
    cookie, _ = await login(client, account)
    assert (await decision_status(client, cookie))[0] == 200  # the instance now caches the session

    response = await client.delete(LOGIN, headers=with_cookie(cookie))
    assert response.status == 200
    assert response.cookies["_barong_session"].value == ""  # the browser is told to drop it
    assert await services.sessions.get(session_hash(cookie)) is None
    assert await decision_status(client, cookie) == (401, {"errors": ["authz.invalid_session"]})

    again = await client.delete(LOGIN_ALIAS, headers=with_cookie(cookie))
    assert (again.status, await again.json()) == (404, {"errors": ["identity.session.not_found"]})


@SQLITE_ONLY
@pytest.mark.parametrize("cookie", [None, "", "0123456789abcdef0123456789abcdef"])
async def test_logout_without_a_live_session_is_not_found(client: Any, cookie: str | None) -> None:
    headers = browser() if cookie is None else with_cookie(cookie)
    response = await client.delete(LOGIN, headers=headers)
    assert (response.status, await response.json()) == (404, {"errors": ["identity.session.not_found"]})


# --- audit trail ------------------------------------------------------------------------------------


async def test_logins_and_logouts_are_written_to_the_activities_table(
    client: Any, make_user: Any, services: Any, clock: Any
) -> None:
    plain = await make_user()
    await post_login(client, {"email": plain.user.email, "password": "Wrong-Passw0rd"})
    cookie, _ = await login(client, plain)
    await client.delete(LOGIN, headers=with_cookie(cookie))
    assert await activities(services, plain) == [
        ("session", "login", "failed"),
        ("session", "login", "succeed"),
        ("session", "logout", "succeed"),
    ]
    failed, succeeded, _ = await services.activities.list(user_id=plain.user.id)
    assert orjson.loads(failed.data or "null") == {"reason": "Invalid Email or Password"}
    assert (succeeded.category, succeeded.user_ip, succeeded.user_agent) == ("user", CLIENT_IP, UA)
    assert succeeded.user_ip_country == "United Kingdom"

    secured = await make_user(otp=True)
    credentials = {"email": secured.user.email, "password": secured.password}
    await post_login(client, credentials)  # missing code: no activity, as Barong
    await post_login(client, {**credentials, "otp_code": wrong_totp(secured.otp_secret, clock.now)})
    await post_login(client, {**credentials, "otp_code": totp.code_at(secured.otp_secret, clock.now)})
    assert await activities(services, secured) == [
        ("session", "login::2fa", "failed"),
        ("session", "login::2fa", "succeed"),
    ]

    banned = await make_user(state="banned")
    await post_login(client, {"email": banned.user.email, "password": banned.password})
    assert await activities(services, banned) == [("session", "login", "failed")]

    before = len(await services.activities.list())
    await post_login(client, {"email": "nobody@example.com", "password": "Wrong-Passw0rd"})
    assert len(await services.activities.list()) == before  # unknown e-mail: nobody to record it for


# --- password hashes --------------------------------------------------------------------------------


@pytest.mark.parametrize("fast_hashing", [False], indirect=True)
async def test_barong_bcrypt_hash_verifies_and_is_upgraded_to_argon2id(client: Any, services: Any) -> None:
    password = "Imported-Passw0rd"
    digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    user = await services.users.create(email="imported@example.com", password_digest=digest, state="active")

    wrong = await post_login(client, {"email": user.email, "password": "Wrong-Passw0rd"})
    assert wrong.status == 401
    assert (await services.users.credentials(user.email)).password_digest == digest  # type: ignore[union-attr]

    first = await post_login(client, {"email": user.email, "password": password})
    assert first.status == 200, await first.text()
    upgraded = (await services.users.credentials(user.email)).password_digest  # type: ignore[union-attr]
    assert upgraded.startswith("$argon2id$")
    assert not passwords.needs_rehash(upgraded)  # today's parameters

    second = await post_login(client, {"email": user.email, "password": password})
    assert second.status == 200
    assert (await services.users.credentials(user.email)).password_digest == upgraded  # type: ignore[union-attr]


# --- throttling -------------------------------------------------------------------------------------


async def assert_throttled(response: Any, window: int) -> None:
    assert response.status == 429, await response.text()
    assert await response.json() == {"errors": ["identity.session.too_many_attempts"]}
    assert 1 <= int(response.headers["Retry-After"]) <= window


@SQLITE_ONLY
async def test_failed_logins_throttle_the_account(make_client: Any, make_user: Any) -> None:
    client = await make_client(login_max_attempts_account=3)
    account = await make_user()
    wrong = {"email": account.user.email, "password": "Wrong-Passw0rd"}
    for n in range(3):
        response = await post_login(client, wrong, headers=browser(f"81.2.69.{n + 1}"))
        assert response.status == 401
    await assert_throttled(await post_login(client, wrong, headers=browser("81.2.69.50")), 300)
    # Even the right password is refused now, from any address.
    right = {"email": account.user.email, "password": account.password}
    await assert_throttled(await post_login(client, right, headers=browser("1.0.0.7")), 300)


@SQLITE_ONLY
async def test_failed_logins_throttle_the_address(make_client: Any, make_user: Any) -> None:
    client = await make_client(login_max_attempts_ip=3)
    account = await make_user()
    for n in range(3):
        response = await post_login(client, {"email": f"nobody{n}@example.com", "password": "x"})
        assert response.status == 401
    right = {"email": account.user.email, "password": account.password}
    await assert_throttled(await post_login(client, right), 300)
    elsewhere = await post_login(client, right, headers=browser("1.0.0.7"))
    assert elsewhere.status == 200


@SQLITE_ONLY
async def test_wrong_two_factor_codes_count_as_failures(make_client: Any, make_user: Any, clock: Any) -> None:
    client = await make_client(login_max_attempts_account=2)
    account = await make_user(otp=True)
    body = {"email": account.user.email, "password": account.password}
    for _ in range(2):
        response = await post_login(client, {**body, "otp_code": wrong_totp(account.otp_secret, clock.now)})
        assert response.status == 403
    code = totp.code_at(account.otp_secret, clock.now)
    await assert_throttled(await post_login(client, {**body, "otp_code": code}), 300)


@SQLITE_ONLY
async def test_successful_login_resets_the_account_counter(make_client: Any, make_user: Any) -> None:
    client = await make_client(login_max_attempts_account=3)
    account = await make_user()
    wrong = {"email": account.user.email, "password": "Wrong-Passw0rd"}
    for _ in range(2):
        assert (await post_login(client, wrong)).status == 401
    await login(client, account)
    for _ in range(2):
        assert (await post_login(client, wrong)).status == 401
    await login(client, account)


@SQLITE_ONLY
async def test_throttle_lifts_when_the_window_ends(make_client: Any, make_user: Any) -> None:
    client = await make_client(login_max_attempts_account=1, login_attempts_window=1)
    account = await make_user()
    assert (
        await post_login(client, {"email": account.user.email, "password": "Wrong-Passw0rd"})
    ).status == 401
    await assert_throttled(await post_login(client, {"email": account.user.email, "password": "x"}), 1)
    await asyncio.sleep(1.1)  # the counter's Redis TTL is the window
    await login(client, account)


@SQLITE_ONLY
async def test_a_login_cancelled_mid_check_gives_its_throttle_slot_back(
    client: Any, make_user: Any, settings: Any, services: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request cancelled while its password is checked must not hold an in-flight slot: leaked slots
    would leave fewer attempts to the account, down to none."""
    account = await make_user()
    service = client.server.app[IDENTITY].login
    checking, release = asyncio.Event(), asyncio.Event()
    users = service._users  # the repository this login service reads
    credentials = users.credentials

    async def slow_credentials(email: str) -> Any:
        checking.set()
        await release.wait()
        return await credentials(email)

    monkeypatch.setattr(users, "credentials", slow_credentials)
    attempt = asyncio.create_task(
        service.check(account.user.email, "Secret-Passw0rd", None, ClientInfo(CLIENT_IP, UA))
    )
    await asyncio.wait_for(checking.wait(), 5)
    pending = [
        f"{settings.redis_namespace}:throttle:ip.login:{CLIENT_IP}:pending",
        f"{settings.redis_namespace}:throttle:user.login:{account.user.email.lower()}:pending",
    ]
    assert [await services.redis.get(key) for key in pending] == ["1", "1"]
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    assert [await services.redis.get(key) for key in pending] == ["0", "0"]
