"""``/resource/service_accounts`` and its ``api_keys`` (barong-behavior.md §5.3), the service-account
repository, and service-account keys at the decision endpoint.

Accounts are created with the ``authz service-accounts create`` command (run in a thread: it has an event loop
of its own) or with the repository; keys through the API with the owner's TOTP codes on the test clock.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from identity.account_propagation import AccountPropagation
from identity.errors import Conflict, ValidationFailed
from identity.service_accounts import SqlServiceAccountRepository
from tests.authz import test_cli
from tests.authz.helpers import bearer_claims, sign
from tests.identity.helpers import PROTECTED, wrong_totp
from tests.resource.helpers import RESOURCE, RESOURCE_ALIAS, Caller

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
ACCOUNTS = f"{RESOURCE}/service_accounts"
KEYS = f"{ACCOUNTS}/api_keys"

# The command's fixtures (environment of the test's storage), shared with test_cli.py.
clean_env = test_cli.clean_env
cli = test_cli.cli


@pytest.fixture
def accounts(services: Any) -> SqlServiceAccountRepository:
    return services.service_accounts


@pytest.fixture
def new_account(accounts: SqlServiceAccountRepository) -> Any:
    """``await new_account(owner_user)``: a service account with the sa_maker role."""

    async def make(owner: Any, role: str = "sa_maker") -> Any:
        return await accounts.create(owner, role)

    return make


def signed(kid: str, secret: str, clock: Any) -> dict[str, str]:
    """``X-Auth-*`` headers with a fresh nonce of the app clock's milliseconds."""
    clock.advance(0.01)
    nonce = str(int(clock.now * 1000))
    return {
        "X-Auth-Apikey": kid,
        "X-Auth-Nonce": nonce,
        "X-Auth-Signature": sign(secret, "HS256", nonce, kid),
        "User-Agent": "bot/1.0",
        "X-Forwarded-For": "81.2.69.10",
    }


async def create_key(api: Any, caller: Caller, uid: str, **body: Any) -> Any:
    body.setdefault("algorithm", "HS256")
    if "totp_code" not in body:
        body["totp_code"] = caller.code()
    return await api.post(KEYS, json={"service_account_uid": uid, **body}, headers=caller.headers)


async def new_key(api: Any, caller: Caller, uid: str, **body: Any) -> dict[str, Any]:
    response = await create_key(api, caller, uid, **body)
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def errors(response: Any, status: int) -> list[str]:
    assert response.status == status, await response.text()
    return list((await response.json())["errors"])


# --- end to end -----------------------------------------------------------------------------------------


async def test_an_owner_creates_a_key_for_its_account_that_passes_the_decision_endpoint_until_2fa_is_off(
    api: Any, sign_in: Any, cli: Any, clock: Any, accounts: SqlServiceAccountRepository
) -> None:
    caller = await sign_in()
    created = await asyncio.to_thread(
        cli, "service-accounts", "create", "--owner", caller.user.uid, "--role", "sa_maker"
    )
    assert created.code == 0, created.err
    uid = created.out.strip()

    key = await new_key(api, caller, uid, scope="trade")
    assert set(key) == {"kid", "algorithm", "scope", "state", "secret", "created_at", "updated_at"}
    assert (key["algorithm"], key["scope"], key["state"]) == ("HS256", ["trade"], "active")

    allowed = await api.get(PROTECTED, headers=signed(key["kid"], key["secret"], clock))
    assert allowed.status == 200, await allowed.text()
    claims = await bearer_claims(
        api, allowed.headers["Authorization"], leeway=120
    )  # the test clock ran ahead
    assert (claims["uid"], claims["role"], claims["state"]) == (uid, "sa_maker", "active")
    account = await accounts.get_by_uid(uid)
    assert account is not None and claims["email"] == account.email

    disabled = await api.post(f"{RESOURCE}/otp/disable", json={"code": caller.code()}, headers=caller.headers)
    assert disabled.status == 200, await disabled.text()
    refused = await api.get(PROTECTED, headers=signed(key["kid"], key["secret"], clock))
    assert await errors(refused, 401) == ["authz.apikey_not_active"]


async def test_an_owner_banned_bans_its_accounts_and_turns_their_keys_off(
    api: Any, sign_in: Any, services: Any, new_account: Any, accounts: SqlServiceAccountRepository, clock: Any
) -> None:
    caller = await sign_in()
    account = await new_account(caller.user)
    key = await new_key(api, caller, account.uid)
    assert (await api.get(PROTECTED, headers=signed(key["kid"], key["secret"], clock))).status == 200

    banned = await services.users.update(caller.user.uid, state="banned")
    await AccountPropagation(services.engine, services.changes).user_changed(caller.user, banned)
    refused = await api.get(PROTECTED, headers=signed(key["kid"], key["secret"], clock))
    assert await errors(refused, 401) == ["authz.apikey_not_active"]
    after = await accounts.get_by_uid(account.uid)
    assert after is not None and after.state == "banned"


# --- GET /service_accounts ------------------------------------------------------------------------------


async def test_list_shows_the_callers_accounts_with_their_owner(
    api: Any, sign_in: Any, new_account: Any, make_user: Any
) -> None:
    caller = await sign_in()
    first = await new_account(caller.user)
    second = await new_account(caller.user, "member")
    await new_account((await make_user()).user)  # someone else's
    response = await api.get(ACCOUNTS, headers=caller.headers)
    assert response.status == 200, await response.text()
    listed = await response.json()
    assert [(a["uid"], a["role"]) for a in listed] == [(first.uid, "sa_maker"), (second.uid, "member")]
    entity = listed[0]
    assert set(entity) == {"email", "uid", "role", "level", "state", "user", "created_at", "updated_at"}
    assert (entity["email"], entity["level"], entity["state"]) == (first.email, 0, "active")
    assert entity["created_at"].endswith("Z")
    user = caller.user
    assert entity["user"] == {
        "email": user.email,
        "uid": user.uid,
        "role": "member",
        "level": 0,
        "otp": True,
        "state": "active",
        "referral_uid": None,
        "data": None,
        "username": None,
    }


@SQLITE_ONLY
async def test_list_is_empty_without_accounts_and_answers_on_the_alias_prefix(api: Any, sign_in: Any) -> None:
    caller = await sign_in(otp=False)
    response = await api.get(f"{RESOURCE_ALIAS}/service_accounts", headers=caller.headers)
    assert response.status == 200 and await response.json() == []


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", ACCOUNTS), ("GET", KEYS), ("POST", KEYS), ("PUT", f"{KEYS}/abc"), ("DELETE", f"{KEYS}/abc")],
)
async def test_every_endpoint_needs_the_bearer_jwt(api: Any, method: str, path: str) -> None:
    response = await api.request(method, path)
    assert await errors(response, 401) == ["jwt.decode_and_verify"]


# --- someone else's account, parameters -----------------------------------------------------------------


async def test_someone_elses_or_an_unknown_account_is_404_before_the_totp_check(
    api: Any, sign_in: Any, new_account: Any, make_user: Any, services: Any
) -> None:
    caller = await sign_in()
    other = await sign_in()
    theirs = await new_account(other.user)
    their_key = await new_key(api, other, theirs.uid)
    wrong = wrong_totp(caller.account.otp_secret, caller.clock.now)
    for uid in (theirs.uid, "SIFFFFFFFFFF"):
        calls = [
            api.get(KEYS, params={"service_account_uid": uid}, headers=caller.headers),
            api.post(
                KEYS,
                json={"service_account_uid": uid, "algorithm": "HS256", "totp_code": wrong},
                headers=caller.headers,
            ),
            api.put(
                f"{KEYS}/{their_key['kid']}",
                json={"service_account_uid": uid, "state": "inactive", "totp_code": wrong},
                headers=caller.headers,
            ),
            api.delete(
                f"{KEYS}/{their_key['kid']}",
                params={"service_account_uid": uid, "totp_code": wrong},
                headers=caller.headers,
            ),
        ]
        for call in calls:
            assert await errors(await call, 404) == ["resource.service_account.doesnt_exist"], uid
    # Even without 2FA (no TOTP guard reached), and nothing changed.
    no_2fa = await sign_in(otp=False)
    response = await api.post(
        KEYS,
        json={"service_account_uid": theirs.uid, "algorithm": "HS256", "totp_code": "123456"},
        headers=no_2fa.headers,
    )
    assert await errors(response, 404) == ["resource.service_account.doesnt_exist"]
    stored = await services.api_keys.get(their_key["kid"])
    assert stored is not None and stored.state == "active"


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("GET", KEYS, {}, ["resource.service_accounts.missing_service_account_uid"]),
        ("GET", KEYS, {"service_account_uid": " "}, ["resource.service_accounts.empty_service_account_uid"]),
        (
            "POST",
            KEYS,
            {},
            [
                "resource.service_accounts.missing_service_account_uid",
                "resource.service_accounts.missing_algorithm",
                "resource.service_accounts.missing_totp",
            ],
        ),
        (
            "POST",
            KEYS,
            {"service_account_uid": ["SI1"], "algorithm": "HS256", "totp_code": "1"},
            ["resource.service_accounts.invalid_service_account_uid"],
        ),
        (
            "PUT",
            f"{KEYS}/abc",
            {"state": "inactive"},
            [
                "resource.service_accounts.missing_service_account_uid",
                "resource.service_accounts.missing_totp",
            ],
        ),
        (
            "DELETE",
            f"{KEYS}/abc",
            {},
            [
                "resource.service_accounts.missing_service_account_uid",
                "resource.service_accounts.missing_totp",
            ],
        ),
    ],
)
async def test_missing_parameters_are_reported_at_once(
    api: Any, sign_in: Any, method: str, path: str, body: dict[str, Any], expected: list[str]
) -> None:
    caller = await sign_in()
    response = await api.request(method, path, json=body, headers=caller.headers)
    assert await errors(response, 422) == expected


# --- POST /service_accounts/api_keys --------------------------------------------------------------------


async def test_create_guards_with_the_owners_totp(api: Any, sign_in: Any, new_account: Any) -> None:
    caller = await sign_in()
    account = await new_account(caller.user)
    wrong = wrong_totp(caller.account.otp_secret, caller.clock.now)
    assert await errors(await create_key(api, caller, account.uid, totp_code=""), 422) == [
        "resource.service_accounts.missing_totp"
    ]
    assert await errors(await create_key(api, caller, account.uid, totp_code=wrong), 422) == [
        "resource.service_accounts.invalid_totp"
    ]
    code = caller.code()
    assert (await create_key(api, caller, account.uid, totp_code=code)).status == 201
    assert await errors(await create_key(api, caller, account.uid, totp_code=code), 422) == ["totp.error"]


async def test_create_needs_the_owners_2fa(api: Any, sign_in: Any, new_account: Any) -> None:
    caller = await sign_in(otp=False)
    account = await new_account(caller.user)
    response = await create_key(api, caller, account.uid, totp_code="123456")
    assert await errors(response, 400) == ["resource.service_accounts.2fa_disabled"]


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [("RS256", ["kid.blank", "algorithm.inclusion"]), ("HS1", ["algorithm.inclusion"])],
)
async def test_create_refuses_other_algorithms(
    api: Any, sign_in: Any, new_account: Any, algorithm: str, expected: list[str]
) -> None:
    caller = await sign_in()
    account = await new_account(caller.user)
    assert await errors(await create_key(api, caller, account.uid, algorithm=algorithm), 422) == expected


async def test_create_refuses_a_disabled_account(
    api: Any, sign_in: Any, new_account: Any, accounts: SqlServiceAccountRepository, services: Any
) -> None:
    caller = await sign_in()
    account = await new_account(caller.user)
    await accounts.delete(account.uid)
    response = await create_key(api, caller, account.uid)
    assert await errors(response, 422) == ["key_holder_account.invalid"]
    assert (await services.api_keys.list_for("ServiceAccount", account.id))[1] == 0


async def test_create_takes_a_form_body_on_the_alias_prefix(
    api: Any, sign_in: Any, new_account: Any, services: Any
) -> None:
    caller = await sign_in()
    account = await new_account(caller.user)
    response = await api.post(
        f"{RESOURCE_ALIAS}/service_accounts/api_keys",
        data={"service_account_uid": account.uid, "algorithm": "HS512", "totp_code": caller.code()},
        headers=caller.headers,
    )
    assert response.status == 201, await response.text()
    stored = await services.api_keys.get((await response.json())["kid"])
    assert (stored.holder_type, stored.holder_id, stored.algorithm) == ("ServiceAccount", account.id, "HS512")


# --- GET /service_accounts/api_keys ---------------------------------------------------------------------


async def test_list_keys_pages_the_accounts_keys_without_secrets(
    api: Any, sign_in: Any, new_account: Any
) -> None:
    caller = await sign_in()
    account = await new_account(caller.user)
    other_account = await new_account(caller.user)
    kids = [(await new_key(api, caller, account.uid))["kid"] for _ in range(3)]
    await new_key(api, caller, other_account.uid)
    await api.post(
        f"{RESOURCE}/api_keys",
        json={"algorithm": "HS256", "totp_code": caller.code()},
        headers=caller.headers,
    )  # the owner's own key: not the account's

    response = await api.get(
        KEYS, params={"service_account_uid": account.uid, "limit": "2", "page": "2"}, headers=caller.headers
    )
    assert response.status == 200, await response.text()
    listed = await response.json()
    assert [key["kid"] for key in listed] == kids[2:]
    assert "secret" not in listed[0]
    assert (response.headers["Total"], response.headers["Page"], response.headers["Per-Page"]) == (
        "3",
        "2",
        "2",
    )
    assert 'rel="prev"' in response.headers["Link"] and 'rel="next"' not in response.headers["Link"]

    desc = await api.get(
        KEYS,
        params={"service_account_uid": account.uid, "ordering": "desc", "order_by": "id"},
        headers=caller.headers,
    )
    assert [key["kid"] for key in await desc.json()] == kids[::-1]


@SQLITE_ONLY
async def test_list_keys_validates_ordering_and_pagination(api: Any, sign_in: Any, new_account: Any) -> None:
    caller = await sign_in(otp=False)  # listing needs no TOTP
    account = await new_account(caller.user)
    params = {"service_account_uid": account.uid, "ordering": "up", "order_by": "secret", "limit": "101"}
    response = await api.get(KEYS, params=params, headers=caller.headers)
    assert await errors(response, 422) == [
        "resource.service_accounts.invalid_ordering",
        "resource.service_accounts.invalid_attribute",
        "invalid_limit",
    ]
    empty = await api.get(KEYS, params={"service_account_uid": account.uid}, headers=caller.headers)
    assert (empty.status, await empty.json(), empty.headers["Total"]) == (200, [], "0")


# --- PUT and DELETE /service_accounts/api_keys/{kid} ----------------------------------------------------


async def test_update_turns_a_key_off_at_the_decision_endpoint_at_once(
    api: Any, sign_in: Any, new_account: Any, clock: Any
) -> None:
    caller = await sign_in()
    account = await new_account(caller.user)
    key = await new_key(api, caller, account.uid)
    assert (await api.get(PROTECTED, headers=signed(key["kid"], key["secret"], clock))).status == 200

    response = await api.put(
        f"{KEYS}/{key['kid']}",
        json={
            "service_account_uid": account.uid,
            "state": "inactive",
            "scope": "read,trade",
            "totp_code": caller.code(),
        },
        headers=caller.headers,
    )
    assert response.status == 200, await response.text()
    updated = await response.json()
    assert (updated["kid"], updated["state"], updated["scope"]) == (key["kid"], "inactive", ["read", "trade"])
    assert "secret" not in updated
    refused = await api.get(PROTECTED, headers=signed(key["kid"], key["secret"], clock))
    assert await errors(refused, 401) == ["authz.apikey_not_active"]

    again = await api.put(
        f"{RESOURCE_ALIAS}/service_accounts/api_keys/{key['kid']}",
        data={"service_account_uid": account.uid, "state": "active", "totp_code": caller.code()},
        headers=caller.headers,
    )
    assert again.status == 200 and (await again.json())["state"] == "active"
    assert (await api.get(PROTECTED, headers=signed(key["kid"], key["secret"], clock))).status == 200


async def test_update_refuses_bad_states_other_kids_and_wrong_codes(
    api: Any, sign_in: Any, new_account: Any
) -> None:
    caller = await sign_in()
    account = await new_account(caller.user)
    sibling = await new_account(caller.user)
    key = await new_key(api, caller, account.uid)
    sibling_key = await new_key(api, caller, sibling.uid)

    async def put(kid: str, **body: Any) -> Any:
        body.setdefault("totp_code", caller.code())
        return await api.put(
            f"{KEYS}/{kid}", json={"service_account_uid": account.uid, **body}, headers=caller.headers
        )

    assert await errors(await put(key["kid"], state="paused"), 422) == ["state.invalid"]
    assert await errors(await put(sibling_key["kid"], state="inactive"), 404) == ["record.not_found"]
    assert await errors(await put("ffffffffffffffff", state="inactive"), 404) == ["record.not_found"]
    wrong = wrong_totp(caller.account.otp_secret, caller.clock.now)
    assert await errors(await put(key["kid"], state="inactive", totp_code=wrong), 422) == [
        "resource.service_accounts.invalid_totp"
    ]


async def test_delete_removes_the_key(
    api: Any, sign_in: Any, new_account: Any, services: Any, clock: Any
) -> None:
    caller = await sign_in()
    account = await new_account(caller.user)
    key = await new_key(api, caller, account.uid)
    wrong = wrong_totp(caller.account.otp_secret, caller.clock.now)
    params = {"service_account_uid": account.uid}
    refused = await api.delete(
        f"{KEYS}/{key['kid']}", params={**params, "totp_code": wrong}, headers=caller.headers
    )
    assert await errors(refused, 422) == ["resource.service_accounts.invalid_totp"]

    response = await api.delete(
        f"{KEYS}/{key['kid']}", params={**params, "totp_code": caller.code()}, headers=caller.headers
    )
    assert response.status == 204, await response.text()
    assert await services.api_keys.get(key["kid"]) is None
    gone = await api.delete(
        f"{KEYS}/{key['kid']}", params={**params, "totp_code": caller.code()}, headers=caller.headers
    )
    assert await errors(gone, 404) == ["record.not_found"]
    unknown = await api.get(PROTECTED, headers=signed(key["kid"], key["secret"], clock))
    assert await errors(unknown, 401) == ["authz.unexistent_apikey"]


# --- the repository -------------------------------------------------------------------------------------


async def test_create_defaults_and_the_uniqueness_of_email_and_uid(
    accounts: SqlServiceAccountRepository, make_user: Any
) -> None:
    owner = (await make_user(email="Owner.Name@Example.com", state="pending")).user
    account = await accounts.create(owner, "sa_maker")
    assert account.email == f"Owner.Name+{account.uid}@Example.com"
    assert (account.state, account.level, account.owner_id) == ("pending", 0, owner.id)
    orphan = await accounts.create(None, "member", email="orphan@example.com", uid="SI0123456789")
    assert (orphan.uid, orphan.state, orphan.owner_id) == ("SI0123456789", "pending", None)

    clashes = [
        {"uid": owner.uid},  # a user's uid
        {"email": "owner.name@example.com"},  # a user's e-mail, in another case
        {"uid": "SI0123456789"},  # another account's uid
        {"email": "ORPHAN@example.com"},
    ]
    for clash in clashes:
        with pytest.raises(Conflict) as raised:
            await accounts.create(owner, "sa_maker", **clash)
        assert raised.value.keys == ["email_or_uid.not_uniq"], clash
    assert len(await accounts.list_all()) == 2


async def test_create_and_update_check_role_email_and_state(
    accounts: SqlServiceAccountRepository, make_user: Any
) -> None:
    owner = (await make_user()).user
    cases = [
        ({"role": "nobody"}, ["role.doesnt_exist"]),
        ({"role": "sa_maker", "email": "nope"}, ["email.invalid"]),
        ({"role": "sa_maker", "state": "sleeping"}, ["state.invalid"]),
    ]
    for arguments, keys in cases:
        with pytest.raises(ValidationFailed) as raised:
            await accounts.create(owner, **arguments)
        assert raised.value.keys == keys
    with pytest.raises(ValidationFailed) as raised:
        await accounts.create(None, "sa_maker")
    assert raised.value.keys == ["email.blank"]
    assert await accounts.list_all() == []

    account = await accounts.create(owner, "sa_maker")
    with pytest.raises(ValidationFailed) as raised:
        await accounts.update(account.uid, role="nobody")
    assert raised.value.keys == ["role.doesnt_exist"]
    with pytest.raises(ValidationFailed):
        await accounts.update(account.uid, state="sleeping")
    assert await accounts.update("SIFFFFFFFFFF", state="banned") is None
    result = await accounts.update(account.uid, role="member", state="locked")
    assert result is not None
    assert (result[0].role, result[0].state, result[1]) == ("member", "locked", [])


async def test_delete_disables_the_account_and_only_its_active_keys(
    accounts: SqlServiceAccountRepository, make_user: Any, services: Any
) -> None:
    owner = (await make_user()).user
    account = await accounts.create(owner, "sa_maker")
    other = await accounts.create(owner, "sa_maker")
    active = await services.api_keys.create(holder_id=account.id, holder_type="ServiceAccount")
    inactive = await services.api_keys.create(holder_id=account.id, holder_type="ServiceAccount")
    await services.api_keys.set_state(inactive.kid, "inactive")
    untouched = await services.api_keys.create(holder_id=other.id, holder_type="ServiceAccount")
    same_id_user_key = await services.api_keys.create(holder_id=account.id, holder_type="User")

    result = await accounts.delete(account.uid)
    assert result is not None
    disabled, kids = result
    assert (disabled.state, kids) == ("disabled", [active.kid])
    states = {
        k.kid: (await services.api_keys.get(k.kid)).state for k in (active, untouched, same_id_user_key)
    }
    assert states == {active.kid: "inactive", untouched.kid: "active", same_id_user_key.kid: "active"}
    assert await accounts.delete("SIFFFFFFFFFF") is None
