"""The API-key branch of the decision endpoint (barong-behavior.md §2.5 with decisions.md), over the real app.

Keys are real rows (secrets encrypted in SQL), nonces are milliseconds on the injected clock, and the
replay marker lives in the real Redis.  Our additions to Barong's catalogue: ``401 authz.nonce_replayed``
for a kid+nonce pair used twice, and HS384/HS512 keys.
"""

from __future__ import annotations

from typing import Any

import pytest

from authz.authn.api_key import ruby_to_i
from authz.settings import Settings
from tests.authz.helpers import (
    PRIVATE_PATH,
    announcer,
    api_key_headers,
    bearer_claims,
    cookie_headers,
    decide,
    error,
    fast_settings,
    new_user,
    now_ms,
    open_session,
    sign,
    start_client,
)

HEADERS = ("X-Auth-Apikey", "X-Auth-Nonce", "X-Auth-Signature")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The conftest settings with a signing key shared by every app of the run (key generation is slow)."""
    return fast_settings(settings)


@pytest.fixture
async def holder(services: Any) -> Any:
    """An active member with 2FA enabled (Barong requires 2FA of key holders)."""
    return await new_user(services, otp=True)


@pytest.fixture
async def key(services: Any, holder: Any) -> Any:
    return await services.api_keys.create(holder_id=holder.id, algorithm="HS256")


@pytest.fixture
def whole_ms(clock: Any) -> Any:
    """The clock on a whole millisecond, so that nonce-window boundaries are exact."""
    clock.now = float(int(clock.now))
    return clock


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
async def test_signed_request_is_allowed_with_the_holders_jwt(
    client: Any, services: Any, holder: Any, clock: Any, algorithm: str
) -> None:
    key = await services.api_keys.create(holder_id=holder.id, algorithm=algorithm)
    status, body, headers = await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock)))
    assert (status, body) == (200, None)
    claims = await bearer_claims(client, headers["Authorization"])
    assert (claims["uid"], claims["email"], claims["role"]) == (holder.uid, holder.email, "member")


async def test_api_key_requests_need_no_csrf_token(client: Any, key: Any, clock: Any) -> None:
    for offset, method in enumerate(("POST", "PUT", "PATCH", "DELETE")):
        status, _, _ = await decide(
            client, method, PRIVATE_PATH, api_key_headers(key, now_ms(clock) + offset)
        )
        assert status == 200, method


# --- headers ------------------------------------------------------------------------------------------


async def test_any_blank_or_missing_api_key_header_is_invalid_headers(
    client: Any, key: Any, clock: Any
) -> None:
    signed = api_key_headers(key, now_ms(clock))
    for name in HEADERS:
        for blank in (None, "", "   "):
            headers = dict(signed)
            if blank is None:
                del headers[name]
            else:
                headers[name] = blank
            status, body, _ = await decide(client, "GET", PRIVATE_PATH, headers)
            assert (status, body) == (422, error("authz.invalid_api_key_headers")), (name, blank)


async def test_one_api_key_header_selects_the_api_key_branch_over_a_valid_cookie(
    client: Any, services: Any, holder: Any, clock: Any
) -> None:
    cookie, _ = await open_session(services, holder, clock)
    for name in HEADERS:
        headers = cookie_headers(cookie, **{name: ""})
        status, body, _ = await decide(client, "GET", PRIVATE_PATH, headers)
        assert (status, body) == (422, error("authz.invalid_api_key_headers")), name


async def test_unknown_kid_is_answered_before_the_nonce_is_looked_at(
    client: Any, key: Any, clock: Any
) -> None:
    for nonce in (now_ms(clock), "garbage", 1):
        headers = api_key_headers(key, nonce, **{"X-Auth-Apikey": "0123456789abcdef"})
        status, body, _ = await decide(client, "GET", PRIVATE_PATH, headers)
        assert (status, body) == (401, error("authz.unexistent_apikey")), nonce


# --- nonce --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nonce", ["garbage", "0", "-1700000000000", "+0", "x1700000000000"])
async def test_nonce_that_is_not_a_positive_integer_is_not_a_valid_timestamp(
    client: Any, key: Any, nonce: str
) -> None:
    status, body, _ = await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, nonce))
    assert (status, body) == (401, error("authz.nonce_not_valid_timestamp"))


#: X-Auth-Nonce → the timestamp Barong reads from it (Ruby's String#to_i).
TO_I_CASES = [
    ("1700000000000", 1700000000000),
    ("  1700000000000", 1700000000000),
    ("\t+17", 17),
    ("-17", -17),
    ("17abc", 17),
    ("17.9", 17),
    ("abc", 0),
    ("", 0),
    ("+", 0),
    ("\u0661\u0662", 0),  # Arabic-Indic digits are not digits to Ruby
    ("\u00a017", 0),  # nor is a no-break space a blank
    ("9" * 5000, 0),  # beyond what Python parses from a string: refused, not an error
]


def test_nonce_is_read_as_rubys_to_i() -> None:
    for text, value in TO_I_CASES:
        assert ruby_to_i(text) == value, text


#: nonce offset from the server's clock (ms) → still inside the 5000 ms window?
NONCE_WINDOW_CASES = [(0, True), (-4999, True), (4999, True), (-5000, False), (5000, False), (-60_000, False)]


async def test_nonce_must_be_within_the_window_either_side_of_now(
    client: Any, key: Any, whole_ms: Any
) -> None:
    for offset, accepted in NONCE_WINDOW_CASES:
        status, body, _ = await decide(
            client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(whole_ms) + offset)
        )
        if accepted:
            assert status == 200, offset
        else:
            assert (status, body) == (401, error("authz.nonce_expired")), offset


async def test_nonce_expires_as_the_clock_moves_on(client: Any, key: Any, whole_ms: Any) -> None:
    headers = api_key_headers(key, now_ms(whole_ms))
    whole_ms.advance(5.0)
    status, body, _ = await decide(client, "GET", PRIVATE_PATH, headers)
    assert (status, body) == (401, error("authz.nonce_expired"))


async def test_nonce_window_is_configurable(
    aiohttp_client: Any, settings: Settings, key: Any, whole_ms: Any
) -> None:
    client = await start_client(aiohttp_client, settings, whole_ms, apikey_nonce_lifetime=60_000)
    assert (await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(whole_ms) - 59_999)))[
        0
    ] == 200
    status, body, _ = await decide(
        client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(whole_ms) - 60_000)
    )
    assert (status, body) == (401, error("authz.nonce_expired"))


async def test_nonce_with_a_trailing_suffix_counts_by_its_leading_digits(
    client: Any, key: Any, clock: Any
) -> None:
    # Ruby's to_i reads "<ms>abc" as <ms>; the signature covers the nonce exactly as sent.
    status, _, _ = await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, f"{now_ms(clock)}abc"))
    assert status == 200


async def test_replayed_nonce_is_rejected(client: Any, key: Any, clock: Any) -> None:
    headers = api_key_headers(key, now_ms(clock))
    assert (await decide(client, "GET", PRIVATE_PATH, headers))[0] == 200
    status, body, _ = await decide(client, "GET", PRIVATE_PATH, headers)
    assert (status, body) == (401, error("authz.nonce_replayed"))
    # A different nonce (even for the same millisecond, written differently) is a new request.
    assert (await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, f"0{now_ms(clock)}")))[0] == 200


async def test_replay_is_per_key(client: Any, services: Any, key: Any, holder: Any, clock: Any) -> None:
    other = await services.api_keys.create(holder_id=holder.id)
    nonce = now_ms(clock)
    assert (await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, nonce)))[0] == 200
    assert (await decide(client, "GET", PRIVATE_PATH, api_key_headers(other, nonce)))[0] == 200


async def test_refused_request_does_not_use_up_its_nonce(client: Any, key: Any, clock: Any) -> None:
    nonce = now_ms(clock)
    bad = api_key_headers(key, nonce, signature="0" * 64)
    for _ in range(2):
        status, body, _ = await decide(client, "GET", PRIVATE_PATH, bad)
        assert (status, body) == (401, error("authz.invalid_signature"))
    assert (await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, nonce)))[0] == 200


async def test_replays_can_be_allowed_for_clients_that_cannot_comply(
    aiohttp_client: Any, settings: Settings, key: Any, clock: Any
) -> None:
    client = await start_client(aiohttp_client, settings, clock, apikey_nonce_replay="allow")
    headers = api_key_headers(key, now_ms(clock))
    for _ in range(3):
        assert (await decide(client, "GET", PRIVATE_PATH, headers))[0] == 200


# --- signature ----------------------------------------------------------------------------------------


async def test_wrong_signature_is_rejected(
    client: Any, services: Any, key: Any, holder: Any, clock: Any
) -> None:
    nonce = str(now_ms(clock))
    right = sign(key.secret, "HS256", nonce, key.kid)
    other = await services.api_keys.create(holder_id=holder.id)
    wrong = {
        "zeros": "0" * 64,
        "upper-case hex": right.upper(),
        "truncated": right[:-1],
        "another key's secret": sign(other.secret, "HS256", nonce, key.kid),
        "kid + nonce": sign(key.secret, "HS256", key.kid, nonce),
        "SHA-512 for an HS256 key": sign(key.secret, "HS512", nonce, key.kid),
        "another nonce": sign(key.secret, "HS256", str(int(nonce) + 1), key.kid),
    }
    for case, signature in wrong.items():
        status, body, _ = await decide(
            client, "GET", PRIVATE_PATH, api_key_headers(key, nonce, signature=signature)
        )
        assert (status, body) == (401, error("authz.invalid_signature")), case


async def test_nonce_is_signed_exactly_as_sent(client: Any, key: Any, clock: Any) -> None:
    sent = f"00{now_ms(clock)}"
    reformatted = sign(key.secret, "HS256", sent.lstrip("0"), key.kid)
    status, body, _ = await decide(
        client, "GET", PRIVATE_PATH, api_key_headers(key, sent, signature=reformatted)
    )
    assert (status, body) == (401, error("authz.invalid_signature"))
    assert (await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, sent)))[0] == 200


# --- key and holder state -------------------------------------------------------------------------------


async def test_disabled_key_is_not_active_at_once(client: Any, services: Any, key: Any, clock: Any) -> None:
    assert (await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock))))[0] == 200
    await services.api_keys.set_state(key.kid, "disabled")
    await announcer(client).api_key_changed(key.kid)
    status, body, _ = await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock) + 1))
    assert (status, body) == (401, error("authz.apikey_not_active"))


#: holder state → Barong's answer to a correctly signed request of an active key.
HOLDER_STATE_CASES = [
    ("active", 200, None),
    ("pending", 200, None),
    ("banned", 401, "authz.invalid_session"),
    ("locked", 401, "authz.invalid_session"),
    ("deleted", 401, "authz.invalid_session"),
]


async def test_holder_state_change_is_applied_at_once(client: Any, services: Any, clock: Any) -> None:
    for state, status, key_name in HOLDER_STATE_CASES:
        user = await new_user(services, otp=True)
        key = await services.api_keys.create(holder_id=user.id)
        assert (await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock))))[0] == 200
        await services.users.update(user.uid, state=state)
        await announcer(client).user_changed(user.uid)
        answer = await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock) + 1))
        assert answer[:2] == (status, error(key_name) if key_name else None), state


async def test_holder_without_2fa_is_refused(client: Any, services: Any, clock: Any) -> None:
    user = await new_user(services, otp=False)
    key = await services.api_keys.create(holder_id=user.id)
    status, body, _ = await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock)))
    assert (status, body) == (401, error("authz.disabled_2fa"))


async def test_disabling_2fa_is_applied_at_once(
    client: Any, services: Any, key: Any, holder: Any, clock: Any
) -> None:
    assert (await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock))))[0] == 200
    await services.users.update(holder.uid, otp=False)
    await announcer(client).user_changed(holder.uid)
    status, body, _ = await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock) + 1))
    assert (status, body) == (401, error("authz.disabled_2fa"))


async def test_key_holder_is_held_to_the_roles_permissions(client: Any, key: Any, clock: Any) -> None:
    status, body, _ = await decide(
        client, "GET", "api/v2/barong/admin/users", api_key_headers(key, now_ms(clock))
    )
    assert (status, body) == (401, error("authz.invalid_permission"))
