"""``/resource/api_keys`` (barong-behavior.md §5.2): the TOTP guard, validation keys, pagination, and keys
that the decision endpoint accepts or refuses at once after a change."""

from __future__ import annotations

from typing import Any

import pytest

from tests.authz.helpers import sign
from tests.identity.helpers import PROTECTED, wrong_totp
from tests.resource.helpers import RESOURCE, RESOURCE_ALIAS

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
KEYS = f"{RESOURCE}/api_keys"


def signed(kid: str, secret: str, clock: Any, algorithm: str = "HS256") -> dict[str, str]:
    """``X-Auth-*`` headers with a nonce of the app clock's milliseconds."""
    nonce = str(int(clock.now * 1000))
    return {
        "X-Auth-Apikey": kid,
        "X-Auth-Nonce": nonce,
        "X-Auth-Signature": sign(secret, algorithm, nonce, kid),
        "User-Agent": "bot/1.0",
        "X-Forwarded-For": "81.2.69.10",
    }


async def create(api: Any, caller: Any, **body: Any) -> Any:
    body.setdefault("algorithm", "HS256")
    if "totp_code" not in body:
        body["totp_code"] = caller.code()
    return await api.post(KEYS, json=body, headers=caller.headers)


async def errors(response: Any, status: int) -> list[str]:
    assert response.status == status, await response.text()
    return (await response.json())["errors"]


async def test_a_key_created_through_the_api_signs_requests_until_2fa_is_disabled(
    api: Any, sign_in: Any, clock: Any
) -> None:
    caller = await sign_in()
    response = await create(api, caller, scope="trade, withdraw")
    assert response.status == 201, await response.text()
    key = await response.json()
    assert set(key) == {"kid", "algorithm", "scope", "state", "secret", "created_at", "updated_at"}
    assert (key["algorithm"], key["scope"], key["state"]) == ("HS256", ["trade", "withdraw"], "active")
    assert len(key["kid"]) == 16 and len(key["secret"]) == 32
    assert key["created_at"].endswith("Z")

    allowed = await api.get(PROTECTED, headers=signed(key["kid"], key["secret"], clock))
    assert allowed.status == 200, await allowed.text()

    disabled = await api.post(f"{RESOURCE}/otp/disable", json={"code": caller.code()}, headers=caller.headers)
    assert disabled.status == 200, await disabled.text()
    clock.advance(0.5)  # a fresh nonce
    refused = await api.get(PROTECTED, headers=signed(key["kid"], key["secret"], clock))
    assert await errors(refused, 401) == ["authz.apikey_not_active"]


@SQLITE_ONLY
@pytest.mark.parametrize("algorithm", ["HS384", "HS512", "hs512"])
async def test_hs384_and_hs512_keys_sign_requests_too(api: Any, sign_in: Any, clock: Any, algorithm: str) -> None:
    caller = await sign_in()
    response = await create(api, caller, algorithm=algorithm)
    assert response.status == 201, await response.text()
    key = await response.json()
    assert key["algorithm"] == algorithm.upper()
    assert key["scope"] == []
    allowed = await api.get(PROTECTED, headers=signed(key["kid"], key["secret"], clock, key["algorithm"]))
    assert allowed.status == 200, await allowed.text()


async def test_the_alias_prefix_serves_the_same_keys(api: Any, sign_in: Any, services: Any) -> None:
    caller = await sign_in()
    response = await api.post(
        f"{RESOURCE_ALIAS}/api_keys", data={"algorithm": "HS256", "totp_code": caller.code()}, headers=caller.headers
    )
    assert response.status == 201, await response.text()
    kid = (await response.json())["kid"]
    listed = await api.get(f"{RESOURCE_ALIAS}/api_keys", headers=caller.headers)
    assert [key["kid"] for key in await listed.json()] == [kid]
    stored = await services.api_keys.get(kid)
    assert (stored.holder_type, stored.holder_id) == ("User", caller.user.id)


@SQLITE_ONLY
@pytest.mark.parametrize(
    "body, expected",
    [
        ({}, ["resource.api_key.missing_algorithm", "resource.api_key.missing_totp"]),
        ({"algorithm": " ", "totp_code": ""}, ["resource.api_key.empty_algorithm", "resource.api_key.missing_totp"]),
        ({"algorithm": "HS256", "totp_code": "123456", "scope": ""}, ["resource.api_key.empty_scope"]),
        ({"algorithm": ["HS256"], "totp_code": "123456"}, ["resource.api_key.invalid_algorithm"]),
        ({"algorithm": "HS256", "totp_code": "123456", "scope": ["a"]}, ["resource.api_key.invalid_scope"]),
    ],
)
async def test_create_reports_every_bad_parameter_at_once(
    api: Any, sign_in: Any, services: Any, body: dict[str, Any], expected: list[str]
) -> None:
    caller = await sign_in(otp=False)  # parameters are checked before the 2FA guard, as Grape does
    response = await api.post(KEYS, json=body, headers=caller.headers)
    assert await errors(response, 422) == expected
    assert (await services.api_keys.list_for("User", caller.user.id))[1] == 0


@SQLITE_ONLY
async def test_the_totp_guard(api: Any, sign_in: Any, services: Any, clock: Any) -> None:
    without_2fa = await sign_in(otp=False)
    response = await api.post(KEYS, json={"algorithm": "HS256", "totp_code": "123456"}, headers=without_2fa.headers)
    assert await errors(response, 400) == ["resource.api_key.2fa_disabled"]

    caller = await sign_in()
    clock.advance(30)
    wrong = wrong_totp(caller.account.otp_secret, clock.now)
    response = await create(api, caller, totp_code=wrong)
    assert await errors(response, 422) == ["resource.api_key.invalid_totp"]

    code = caller.code()
    assert (await create(api, caller, totp_code=code)).status == 201
    response = await create(api, caller, totp_code=code)  # the same step again
    assert await errors(response, 422) == ["totp.error"]
    number = caller.code()
    while number.startswith("0"):  # a JSON number has no leading zero: take a step whose code has none
        number = caller.code()
    as_number = await create(api, caller, totp_code=int(number))
    assert as_number.status == 201, await as_number.text()
    assert (await services.api_keys.list_for("User", caller.user.id))[1] == 2


@SQLITE_ONLY
@pytest.mark.parametrize(
    "algorithm, expected",
    [("RS256", ["kid.blank", "algorithm.inclusion"]), ("HS1024", ["algorithm.inclusion"])],
)
async def test_only_hmac_algorithms_are_accepted(
    api: Any, sign_in: Any, services: Any, algorithm: str, expected: list[str]
) -> None:
    caller = await sign_in()
    response = await create(api, caller, algorithm=algorithm)
    assert await errors(response, 422) == expected
    assert (await services.api_keys.list_for("User", caller.user.id))[1] == 0


@SQLITE_ONLY
async def test_a_holder_that_is_not_active_gets_no_key(api: Any, sign_in: Any, services: Any) -> None:
    caller = await sign_in(state="pending")
    response = await create(api, caller, algorithm="RS256")
    assert await errors(response, 422) == ["kid.blank", "algorithm.inclusion", "key_holder_account.invalid"]
    response = await create(api, caller)
    assert await errors(response, 422) == ["key_holder_account.invalid"]
    assert (await services.api_keys.list_for("User", caller.user.id))[1] == 0


async def test_listing_pages_orders_and_never_shows_secrets(api: Any, sign_in: Any, services: Any) -> None:
    caller = await sign_in(otp=False)  # listing needs neither 2FA nor a code
    other = await sign_in(otp=False)
    await services.api_keys.create(holder_id=other.user.id)
    kids = [(await services.api_keys.create(holder_id=caller.user.id)).kid for _ in range(3)]

    response = await api.get(KEYS, headers=caller.headers)
    assert response.status == 200
    listed = await response.json()
    assert [key["kid"] for key in listed] == kids  # default: id ascending
    assert all("secret" not in key for key in listed)
    assert response.headers["Total"] == "3"

    response = await api.get(f"{KEYS}?order_by=kid&ordering=desc&limit=2&page=1", headers=caller.headers)
    assert [key["kid"] for key in await response.json()] == sorted(kids, reverse=True)[:2]
    assert (response.headers["Total"], response.headers["Page"], response.headers["Per-Page"]) == ("3", "1", "2")
    assert 'rel="next"' in response.headers["Link"] and "page=2" in response.headers["Link"]
    response = await api.get(f"{KEYS}?order_by=kid&ordering=desc&limit=2&page=2", headers=caller.headers)
    assert [key["kid"] for key in await response.json()] == sorted(kids, reverse=True)[2:]
    response = await api.get(f"{KEYS}?order_by=created_at&ordering=asc", headers=caller.headers)
    assert [key["kid"] for key in await response.json()] == kids


@SQLITE_ONLY
@pytest.mark.parametrize(
    "query, expected",
    [
        ("ordering=up", ["resource.api_key.invalid_ordering"]),
        ("ordering=", ["resource.api_key.invalid_ordering"]),
        ("order_by=secret_encrypted", ["resource.api_key.invalid_attribute"]),
        ("order_by=kid;drop", ["resource.api_key.invalid_attribute"]),
        (
            "ordering=ASC&order_by=x&page=0&limit=101",
            [
                "resource.api_key.invalid_ordering",
                "resource.api_key.invalid_attribute",
                "non_positive_page",
                "invalid_limit",
            ],
        ),
        ("page=a&limit=b", ["non_integer_page", "non_integer_limit"]),
    ],
)
async def test_bad_listing_parameters(api: Any, sign_in: Any, query: str, expected: list[str]) -> None:
    caller = await sign_in(otp=False)
    response = await api.get(f"{KEYS}?{query}", headers=caller.headers)
    assert await errors(response, 422) == expected


async def test_patch_changes_scope_and_state_and_the_decision_follows_at_once(
    api: Any, sign_in: Any, clock: Any
) -> None:
    caller = await sign_in()
    key = await (await create(api, caller)).json()
    assert (await api.get(PROTECTED, headers=signed(key["kid"], key["secret"], clock))).status == 200

    body = {"state": "inactive", "scope": "read", "totp_code": caller.code()}
    response = await api.patch(f"{KEYS}/{key['kid']}", json=body, headers=caller.headers)
    assert response.status == 200, await response.text()
    updated = await response.json()
    assert "secret" not in updated
    assert (updated["kid"], updated["state"], updated["scope"]) == (key["kid"], "inactive", ["read"])
    refused = await api.get(PROTECTED, headers=signed(key["kid"], key["secret"], clock))
    assert await errors(refused, 401) == ["authz.apikey_not_active"]

    body = {"state": "active", "totp_code": caller.code()}
    response = await api.patch(f"{KEYS}/{key['kid']}", data=body, headers=caller.headers)
    assert (await response.json())["scope"] == ["read"]  # untouched when not given
    assert (await api.get(PROTECTED, headers=signed(key["kid"], key["secret"], clock))).status == 200


@SQLITE_ONLY
async def test_patch_errors(api: Any, sign_in: Any, services: Any, clock: Any) -> None:
    caller = await sign_in()
    other = await sign_in()
    mine = await services.api_keys.create(holder_id=caller.user.id)
    theirs = await services.api_keys.create(holder_id=other.user.id)

    async def patch(kid: str, **body: Any) -> Any:
        return await api.patch(f"{KEYS}/{kid}", json=body, headers=caller.headers)

    for kid in (theirs.kid, "0123456789abcdef"):
        assert await errors(await patch(kid, state="inactive", totp_code=caller.code()), 404) == ["record.not_found"]
    assert (await services.api_keys.get(theirs.kid)).state == "active"
    assert await errors(await patch(mine.kid, state="on", totp_code=caller.code()), 422) == ["state.invalid"]
    assert await errors(await patch(mine.kid, state="", scope=""), 422) == [
        "resource.api_key.missing_totp",
        "resource.api_key.empty_scope",
        "resource.api_key.empty_state",
    ]
    # Barong checks the TOTP before looking the key up
    clock.advance(30)
    wrong = wrong_totp(caller.account.otp_secret, clock.now)
    assert await errors(await patch("0123456789abcdef", totp_code=wrong), 422) == ["resource.api_key.invalid_totp"]
    assert (await services.api_keys.get(mine.kid)).state == "active"


@SQLITE_ONLY
async def test_a_holder_that_is_not_active_cannot_reactivate_a_key(api: Any, sign_in: Any, services: Any) -> None:
    caller = await sign_in(state="pending")
    key = await services.api_keys.create(holder_id=caller.user.id)
    body = {"state": "active", "totp_code": caller.code()}
    response = await api.patch(f"{KEYS}/{key.kid}", json=body, headers=caller.headers)
    assert await errors(response, 422) == ["state.invalid"]
    body = {"state": "inactive", "totp_code": caller.code()}
    response = await api.patch(f"{KEYS}/{key.kid}", json=body, headers=caller.headers)
    assert (await response.json())["state"] == "inactive"


@SQLITE_ONLY
async def test_patch_and_delete_need_2fa(api: Any, sign_in: Any, services: Any) -> None:
    caller = await sign_in(otp=False)
    key = await services.api_keys.create(holder_id=caller.user.id)
    response = await api.patch(f"{KEYS}/{key.kid}", json={"state": "inactive", "totp_code": "1"}, headers=caller.headers)
    assert await errors(response, 400) == ["resource.api_key.2fa_disabled"]
    response = await api.delete(f"{KEYS}/{key.kid}?totp_code=123456", headers=caller.headers)
    assert await errors(response, 400) == ["resource.api_key.2fa_disabled"]
    assert (await services.api_keys.get(key.kid)).state == "active"


async def test_delete_removes_the_key(api: Any, sign_in: Any, services: Any, clock: Any) -> None:
    caller = await sign_in()
    other = await sign_in()
    key = await (await create(api, caller)).json()
    theirs = await services.api_keys.create(holder_id=other.user.id)

    response = await api.delete(f"{KEYS}/{key['kid']}", headers=caller.headers)
    assert await errors(response, 422) == ["resource.api_key.missing_totp"]
    response = await api.delete(f"{KEYS}/{theirs.kid}?totp_code={caller.code()}", headers=caller.headers)
    assert await errors(response, 404) == ["record.not_found"]
    assert await services.api_keys.get(theirs.kid) is not None

    response = await api.delete(f"{KEYS}/{key['kid']}?totp_code={caller.code()}", headers=caller.headers)
    assert response.status == 204
    assert await services.api_keys.get(key["kid"]) is None
    assert await (await api.get(KEYS, headers=caller.headers)).json() == []
    refused = await api.get(PROTECTED, headers=signed(key["kid"], key["secret"], clock))
    assert await errors(refused, 401) == ["authz.unexistent_apikey"]
    response = await api.delete(f"{KEYS}/{key['kid']}?totp_code={caller.code()}", headers=caller.headers)
    assert await errors(response, 404) == ["record.not_found"]


@SQLITE_ONLY
async def test_keys_need_a_bearer(api: Any) -> None:
    for method in ("GET", "POST"):
        response = await api.request(method, KEYS)
        assert await errors(response, 401) == ["jwt.decode_and_verify"]
    response = await api.delete(f"{KEYS}/0123456789abcdef?totp_code=123456")
    assert await errors(response, 401) == ["jwt.decode_and_verify"]
