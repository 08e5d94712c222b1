"""``/resource/otp`` (barong-behavior.md §6 with decisions.md): enrolment, enabling, disabling and verifying
2FA, with every error key, the activities, and the effects on sessions and logins."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from identity.labels import SqlLabelRepository
from identity.totp import code_at
from tests.identity.helpers import decision_status, login, post_login, with_cookie, wrong_totp
from tests.resource.helpers import RESOURCE, RESOURCE_ALIAS, bearer, jwt_for

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
OTP = f"{RESOURCE}/otp"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def errors(response: Any, status: int) -> list[str]:
    assert response.status == status, await response.text()
    return (await response.json())["errors"]


async def otp_activities(services: Any, user: Any) -> list[tuple[str, str]]:
    return [(a.action, a.result) for a in await services.activities.list(user_id=user.id) if a.topic == "otp"]


async def generate(api: Any, headers: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The secret of a fresh enrolment, and the answer's data."""
    response = await api.post(f"{OTP}/generate_qrcode", headers=headers)
    assert response.status == 201, await response.text()
    data = (await response.json())["data"]
    return parse_qs(urlsplit(data["url"]).query)["secret"][0], data


async def test_enrol_enable_log_in_with_the_code_and_disable(
    api: Any, make_user: Any, services: Any, clock: Any
) -> None:
    account = await make_user()
    headers = bearer(await jwt_for(api, account))

    first, _ = await generate(api, headers)
    secret, data = await generate(api, headers)  # a new secret at every call
    assert secret != first
    url = urlsplit(data["url"])
    assert (url.scheme, url.netloc, unquote(url.path)) == ("otpauth", "totp", f"/Barong:{account.user.email}")
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert query == {"secret": secret, "issuer": "Barong", "algorithm": "SHA1", "digits": "6", "period": "30"}
    png = base64.b64decode(data["barcode"], validate=True)
    assert png.startswith(PNG_SIGNATURE)
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width == height and 250 <= width <= 350
    assert not (await services.users.get_by_uid(account.user.uid)).otp  # not on before ``enable``

    response = await api.post(f"{OTP}/enable", json={"code": code_at(secret, clock.now)}, headers=headers)
    assert response.status == 201, await response.text()
    assert await response.json() == {}
    assert (await services.users.get_by_uid(account.user.uid)).otp
    labels = await SqlLabelRepository(services.engine).for_user(account.user.id)
    assert [(label.key, label.value, label.scope) for label in labels] == [("otp", "enabled", "private")]

    body = {"email": account.user.email, "password": account.password}
    assert await errors(await post_login(api, body), 401) == ["identity.session.missing_otp"]
    clock.advance(30)
    cookie, _ = await login(api, account, otp_code=code_at(secret, clock.now))
    assert (await decision_status(api, cookie))[0] == 200

    clock.advance(30)
    response = await api.post(f"{OTP}/disable", json={"code": code_at(secret, clock.now)}, headers=headers)
    assert response.status == 200, await response.text()
    assert await response.json() == {}
    assert not (await services.users.get_by_uid(account.user.uid)).otp
    assert await services.users.otp_secret(account.user.id) is None  # wiped
    assert await SqlLabelRepository(services.engine).for_user(account.user.id) == []
    await login(api, account)  # no code needed any more

    assert await otp_activities(services, account.user) == [
        ("request QR code for 2FA", "succeed"),
        ("request QR code for 2FA", "succeed"),
        ("enable 2FA", "succeed"),
        ("disable 2FA", "succeed"),
    ]


async def test_enabling_revokes_the_other_sessions_but_not_the_current_one(
    api: Any, make_user: Any, clock: Any
) -> None:
    account = await make_user()
    current, _ = await login(api, account)
    other, _ = await login(api, account)
    decided = await api.get("/api/v2/auth/api/v2/barong/resource/otp/enable", headers=with_cookie(current))
    headers = bearer(decided.headers["Authorization"], Cookie=f"_barong_session={current}")

    secret, _ = await generate(api, headers)
    response = await api.post(f"{OTP}/enable", json={"code": code_at(secret, clock.now)}, headers=headers)
    assert response.status == 201, await response.text()
    assert await decision_status(api, current) == (200, None)
    assert await decision_status(api, other) == (401, {"errors": ["authz.invalid_session"]})


async def test_disabling_deactivates_the_users_api_keys(api: Any, make_user: Any, services: Any, clock: Any) -> None:
    account = await make_user(otp=True)
    headers = bearer(await jwt_for(api, account, otp_code=code_at(account.otp_secret, clock.now)))
    keys = [await services.api_keys.create(holder_id=account.user.id) for _ in range(2)]
    clock.advance(30)
    response = await api.post(f"{OTP}/disable", json={"code": code_at(account.otp_secret, clock.now)}, headers=headers)
    assert response.status == 200, await response.text()
    assert [(await services.api_keys.get(key.kid)).state for key in keys] == ["inactive", "inactive"]


@SQLITE_ONLY
async def test_generate_refuses_when_2fa_is_on(api: Any, make_user: Any, services: Any, clock: Any) -> None:
    account = await make_user(otp=True)
    headers = bearer(await jwt_for(api, account, otp_code=code_at(account.otp_secret, clock.now)))
    encrypted = await services.users.otp_secret(account.user.id)
    response = await api.post(f"{RESOURCE_ALIAS}/otp/generate_qrcode", headers=headers)
    assert await errors(response, 400) == ["resource.otp.already_enabled"]
    assert await services.users.otp_secret(account.user.id) == encrypted  # the secret in use is kept
    assert await otp_activities(services, account.user) == [("request QR code for 2FA", "failed")]


@SQLITE_ONLY
@pytest.mark.parametrize("endpoint", ["enable", "disable", "verify"])
@pytest.mark.parametrize(
    "body, expected",
    [
        ({}, "resource.otp.missing_code"),
        ({"code": ""}, "resource.otp.empty_code"),
        ({"code": "  "}, "resource.otp.empty_code"),
        ({"code": ["123456"]}, "resource.otp.invalid_code"),
    ],
)
async def test_a_code_is_required(
    api: Any, make_user: Any, services: Any, clock: Any, endpoint: str, body: dict[str, Any], expected: str
) -> None:
    account = await make_user(otp=endpoint != "enable")
    extra = {"otp_code": code_at(account.otp_secret, clock.now)} if account.otp_secret else {}
    headers = bearer(await jwt_for(api, account, **extra))
    response = await api.post(f"{OTP}/{endpoint}", json=body, headers=headers)
    assert await errors(response, 422) == [expected]
    assert (await services.users.get_by_uid(account.user.uid)).otp == account.user.otp


@SQLITE_ONLY
async def test_enable_errors(api: Any, make_user: Any, services: Any, clock: Any) -> None:
    account = await make_user()
    headers = bearer(await jwt_for(api, account))
    response = await api.post(f"{OTP}/enable", json={"code": "123456"}, headers=headers)
    assert await errors(response, 422) == ["resource.otp.invalid"]  # no secret generated yet

    secret, _ = await generate(api, headers)
    wrong = wrong_totp(secret, clock.now)
    response = await api.post(f"{OTP}/enable", json={"code": wrong}, headers=headers)
    assert await errors(response, 422) == ["resource.otp.invalid"]
    assert not (await services.users.get_by_uid(account.user.uid)).otp

    code = code_at(secret, clock.now)
    response = await api.post(f"{OTP}/enable", data={"code": code}, headers=headers)  # a form works too
    assert response.status == 201, await response.text()
    clock.advance(30)
    response = await api.post(f"{OTP}/enable", json={"code": code_at(secret, clock.now)}, headers=headers)
    assert await errors(response, 400) == ["resource.otp.already_enabled"]
    assert await otp_activities(services, account.user) == [
        ("enable 2FA", "failed"),
        ("request QR code for 2FA", "succeed"),
        ("enable 2FA", "failed"),
        ("enable 2FA", "succeed"),
        ("enable 2FA", "failed"),
    ]


@SQLITE_ONLY
async def test_a_code_counts_once(api: Any, make_user: Any, services: Any, clock: Any) -> None:
    account = await make_user(otp=True)
    login_code = code_at(account.otp_secret, clock.now)
    headers = bearer(await jwt_for(api, account, otp_code=login_code))
    for endpoint in ("verify", "disable"):
        response = await api.post(f"{OTP}/{endpoint}", json={"code": login_code}, headers=headers)
        assert await errors(response, 422) == ["totp.error"]
    assert (await services.users.get_by_uid(account.user.uid)).otp

    other = await make_user()
    other_headers = bearer(await jwt_for(api, other))
    secret, _ = await generate(api, other_headers)
    code = code_at(secret, clock.now)
    assert (await api.post(f"{OTP}/verify", json={"code": code}, headers=other_headers)).status == 400
    assert (await api.post(f"{OTP}/enable", json={"code": code}, headers=other_headers)).status == 201
    response = await api.post(f"{OTP}/verify", json={"code": code}, headers=other_headers)
    assert await errors(response, 422) == ["totp.error"]


@SQLITE_ONLY
async def test_disable_errors(api: Any, make_user: Any, services: Any, clock: Any) -> None:
    plain = await make_user()
    response = await api.post(f"{OTP}/disable", json={"code": "123456"}, headers=bearer(await jwt_for(api, plain)))
    assert await errors(response, 400) == ["resource.otp.not_enabled"]
    assert await otp_activities(services, plain.user) == [("disable 2FA", "failed")]

    account = await make_user(otp=True)
    headers = bearer(await jwt_for(api, account, otp_code=code_at(account.otp_secret, clock.now)))
    key = await services.api_keys.create(holder_id=account.user.id)
    clock.advance(30)
    wrong = wrong_totp(account.otp_secret, clock.now)
    response = await api.post(f"{OTP}/disable", json={"code": wrong}, headers=headers)
    assert await errors(response, 422) == ["resource.otp.invalid"]
    assert (await services.users.get_by_uid(account.user.uid)).otp
    assert (await services.api_keys.get(key.kid)).state == "active"
    assert await otp_activities(services, account.user) == [("disable 2FA", "failed")]


@SQLITE_ONLY
async def test_verify(api: Any, make_user: Any, services: Any, clock: Any) -> None:
    plain = await make_user()
    response = await api.post(f"{OTP}/verify", json={"code": "123456"}, headers=bearer(await jwt_for(api, plain)))
    assert await errors(response, 400) == ["resource.otp.not_enabled"]

    account = await make_user(otp=True)
    headers = bearer(await jwt_for(api, account, otp_code=code_at(account.otp_secret, clock.now)))
    clock.advance(30)
    wrong = wrong_totp(account.otp_secret, clock.now)
    response = await api.post(f"{OTP}/verify", json={"code": wrong}, headers=headers)
    assert await errors(response, 422) == ["resource.otp.invalid"]
    code = code_at(account.otp_secret, clock.now)
    while code.startswith("0"):  # a JSON number has no leading zero: take a step whose code has none
        clock.advance(30)
        code = code_at(account.otp_secret, clock.now)
    response = await api.post(f"{OTP}/verify", json={"code": int(code)}, headers=headers)  # a JSON number
    assert response.status == 201, await response.text()
    assert await response.json() == {}
    assert await otp_activities(services, account.user) == [("verify 2FA code", "failed")]  # failures only


@SQLITE_ONLY
async def test_otp_needs_a_bearer(api: Any) -> None:
    for endpoint in ("generate_qrcode", "enable", "disable", "verify"):
        response = await api.post(f"{OTP}/{endpoint}", json={"code": "123456"})
        assert await errors(response, 401) == ["jwt.decode_and_verify"]
