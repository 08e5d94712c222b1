"""API keys of service accounts at the decision endpoint (barong-behavior.md §2.5, §5.3), over the real app.

A service account's key authenticates as the account (its uid, e-mail, role, level and state go upstream)
with no 2FA asked of anyone; the account must be ``active`` and its owner must exist and be active or
pending, else ``401 authz.invalid_session``.
"""

from __future__ import annotations

from typing import Any

import pytest

from authz.settings import Settings
from identity.account_propagation import AccountPropagation
from identity.service_accounts import SqlServiceAccountRepository, announcements
from tests.authz.helpers import (
    PRIVATE_PATH,
    announcer,
    api_key_headers,
    bearer_claims,
    decide,
    error,
    fast_settings,
    new_user,
    now_ms,
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return fast_settings(settings)


@pytest.fixture
def accounts(services: Any) -> SqlServiceAccountRepository:
    return services.service_accounts


@pytest.fixture
async def owner(services: Any) -> Any:
    """An active member WITHOUT 2FA: a service account's key needs none."""
    return await new_user(services)


@pytest.fixture
async def account(accounts: SqlServiceAccountRepository, owner: Any) -> Any:
    return await accounts.create(owner, "sa_maker")


@pytest.fixture
async def key(services: Any, account: Any) -> Any:
    return await services.api_keys.create(holder_id=account.id, holder_type="ServiceAccount")


async def test_signed_request_passes_as_the_service_account(
    client: Any, key: Any, account: Any, clock: Any
) -> None:
    status, body, headers = await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock)))
    assert (status, body) == (200, None)
    claims = await bearer_claims(client, headers["Authorization"])
    subject = {
        name: claims[name] for name in ("uid", "email", "role", "level", "state", "username", "referral_id")
    }
    assert subject == {
        "uid": account.uid,
        "email": account.email,
        "role": "sa_maker",
        "level": 0,
        "state": "active",
        "username": None,
        "referral_id": None,
    }


async def test_the_service_accounts_role_decides(client: Any, key: Any, clock: Any) -> None:
    """sa_maker may read balances but not manage API keys (DROP), whatever its owner may do."""
    status, body, _ = await decide(
        client, "POST", "api/v2/barong/resource/api_keys", api_key_headers(key, now_ms(clock))
    )
    assert (status, body) == (401, error("authz.invalid_permission"))


@pytest.mark.parametrize("state", ["pending", "banned", "locked", "deleted", "disabled"])
async def test_a_service_account_that_is_not_active_is_refused(
    client: Any,
    services: Any,
    accounts: SqlServiceAccountRepository,
    account: Any,
    key: Any,
    clock: Any,
    state: str,
) -> None:
    assert (await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock))))[0] == 200
    # The key stays active (no propagation): the account's own state is checked at the endpoint.
    result = await accounts.update(account.uid, state=state)
    assert result is not None
    await services.api_keys.set_state(key.kid, "active")
    await announcer(client).publish(*announcements(result[0], [key.kid]))
    status, body, _ = await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock) + 1))
    assert (status, body) == (401, error("authz.invalid_session"))


@pytest.mark.parametrize(
    ("owner_state", "expected"),
    [("pending", (200, None)), ("banned", (401, error("authz.invalid_session")))],
)
async def test_the_owner_must_be_usable_even_if_a_propagation_was_missed(
    client: Any, services: Any, owner: Any, key: Any, clock: Any, owner_state: str, expected: Any
) -> None:
    assert (await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock))))[0] == 200
    await services.users.update(owner.uid, state=owner_state)  # the account and key are left as they were
    await announcer(client).user_changed(owner.uid)
    status, body, _ = await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock) + 1))
    assert (status, body) == expected


async def test_an_account_without_owner_is_refused(
    client: Any, services: Any, accounts: SqlServiceAccountRepository, clock: Any
) -> None:
    orphan = await accounts.create(None, "sa_maker", email="orphan@example.com", state="active")
    key = await services.api_keys.create(holder_id=orphan.id, holder_type="ServiceAccount")
    status, body, _ = await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock)))
    assert (status, body) == (401, error("authz.invalid_session"))


async def test_a_key_whose_account_is_gone_is_refused(client: Any, services: Any, clock: Any) -> None:
    key = await services.api_keys.create(holder_id=987_654, holder_type="ServiceAccount")
    status, body, _ = await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock)))
    assert (status, body) == (401, error("authz.invalid_session"))


async def test_owner_banned_propagates_to_the_account_and_its_keys(
    client: Any,
    services: Any,
    accounts: SqlServiceAccountRepository,
    owner: Any,
    account: Any,
    key: Any,
    clock: Any,
) -> None:
    assert (await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock))))[0] == 200
    banned = await services.users.update(owner.uid, state="banned")
    await AccountPropagation(services.engine, services.changes).user_changed(owner, banned)
    status, body, _ = await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock) + 1))
    assert (status, body) == (401, error("authz.apikey_not_active"))
    after = await accounts.get_by_uid(account.uid)
    assert after is not None and after.state == "banned"


async def test_owner_turning_2fa_off_deactivates_the_accounts_keys(
    client: Any, services: Any, clock: Any, accounts: SqlServiceAccountRepository
) -> None:
    owner = await new_user(services, otp=True)
    account = await accounts.create(owner, "sa_maker")
    key = await services.api_keys.create(holder_id=account.id, holder_type="ServiceAccount")
    assert (await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock))))[0] == 200
    without_2fa = await services.users.update(owner.uid, otp=False)
    await AccountPropagation(services.engine, services.changes).user_changed(owner, without_2fa)
    status, body, _ = await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock) + 1))
    assert (status, body) == (401, error("authz.apikey_not_active"))
    after = await accounts.get_by_uid(account.uid)
    assert after is not None and after.state == "active"  # 2FA off changes the keys only


async def test_a_role_change_reaches_the_jwt_at_once(
    client: Any, services: Any, accounts: SqlServiceAccountRepository, account: Any, key: Any, clock: Any
) -> None:
    assert (await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock))))[0] == 200
    result = await accounts.update(account.uid, role="member")
    assert result is not None and result[1] == []
    await announcer(client).publish(*announcements(*result))
    status, _, headers = await decide(client, "GET", PRIVATE_PATH, api_key_headers(key, now_ms(clock) + 1))
    assert status == 200
    assert (await bearer_claims(client, headers["Authorization"]))["role"] == "member"
