"""Admin API: ``/admin/users`` — listing and filters, ``/users/{uid}`` (UserWithKYC), state, 2FA, e-mail and
role changes, data storages, pending documents and API keys (barong-behavior.md §8.3, seed 2.4), over the
real app on SQLite and PostgreSQL.

A change must be written with its admin activity and count at the decision endpoint on the next request:
a banned user's cookie and API keys stop working, a new role is the one the permissions see.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import update

from identity.account_rules import AccountRules
from identity.data_storage import SqlDataStorageRepository
from identity.db import documents, phones, users
from identity.labels import SqlLabelRepository
from identity.models import Activity
from identity.profiles import ProfileChange, SqlProfileRepository
from tests.admin.conftest import ADMIN, ADMIN_ALIAS
from tests.authz.helpers import (
    api_key_headers,
    bearer_claims,
    cookie_headers,
    decide,
    error,
    now_ms,
    open_session,
)
from tests.resource.helpers import Caller, errors_of

PREFIXES = pytest.mark.parametrize("prefix", [ADMIN, ADMIN_ALIAS])
BALANCES = "api/v2/peatio/account/balances"  # members: ACCEPT ALL api/v2/peatio/account


async def user_activities(services: Any) -> list[Activity]:
    """The admin activities on topic ``users`` that record changes (not the decision endpoint's denials),
    oldest first."""
    found = await services.activities.list(category="admin")
    return [a for a in found if a.topic == "users" and a.result != "denied"]


async def set_times(services: Any, uid: str, created: datetime, updated: datetime | None = None) -> None:
    async with services.engine.begin() as conn:
        await conn.execute(
            update(users).where(users.c.uid == uid).values(created_at=created, updated_at=updated or created)
        )


async def give_profile(services: Any, user: Any, **values: str | None) -> None:
    await SqlProfileRepository(services.engine).create(user.id, ProfileChange(values, confirm=True))


# --- GET /users -------------------------------------------------------------------------------------


@PREFIXES
async def test_list_is_paginated_in_id_order_with_the_user_entity(
    api: Any, superadmin: Caller, make_user: Any, prefix: str
) -> None:
    made = [(await make_user()).user for _ in range(3)]
    response = await api.get(
        f"{prefix}/users", params={"limit": "2", "page": "2"}, headers=superadmin.headers
    )
    assert response.status == 200
    assert (response.headers["Total"], response.headers["Page"], response.headers["Per-Page"]) == (
        "4",
        "2",
        "2",
    )
    body = await response.json()
    assert [u["uid"] for u in body] == [made[1].uid, made[2].uid]
    assert body[0] == {
        "email": made[1].email,
        "uid": made[1].uid,
        "role": "member",
        "level": 0,
        "otp": False,
        "state": "active",
        "referral_uid": None,
        "data": None,
        "username": None,
    }


async def test_list_filters_on_user_columns_and_profile_fields(
    api: Any, superadmin: Caller, make_user: Any, services: Any
) -> None:
    alice = (await make_user(email="alice@example.com", state="pending")).user
    bob = (await make_user(role="admin")).user
    await give_profile(services, alice, first_name="Alice", last_name="Liddell", country="GB")
    await give_profile(services, bob, first_name="Bob", country="FR")

    async def uids(**params: str) -> list[str]:
        response = await api.get(f"{ADMIN}/users", params=params, headers=superadmin.headers)
        assert response.status == 200, await response.text()
        return [u["uid"] for u in await response.json()]

    assert await uids(state="pending") == [alice.uid]
    assert await uids(role="admin") == [bob.uid]
    assert await uids(email="alice@example.com") == [alice.uid]
    assert await uids(uid=bob.uid) == [bob.uid]
    assert await uids(first_name="Alice") == [alice.uid]
    assert await uids(country="gb", last_name="Liddell") == [alice.uid]
    assert await uids(country="FR", state="pending") == []
    assert await uids(level="0", role="member", state="pending") == [alice.uid]
    assert await uids(email="") == [superadmin.user.uid, alice.uid, bob.uid]  # a blank filter filters nothing


async def test_list_filters_on_a_time_range_and_orders(
    api: Any, superadmin: Caller, make_user: Any, services: Any
) -> None:
    old, new = (await make_user(email="b@example.com")).user, (await make_user(email="a@example.com")).user
    start = datetime(2024, 3, 1, tzinfo=UTC)
    await set_times(services, superadmin.user.uid, start - timedelta(days=10))
    await set_times(services, old.uid, start, updated=start + timedelta(days=5))
    await set_times(services, new.uid, start + timedelta(days=2))
    moment = int(start.timestamp())

    async def uids(**params: Any) -> list[str]:
        response = await api.get(f"{ADMIN}/users", params=params, headers=superadmin.headers)
        assert response.status == 200, await response.text()
        return [u["uid"] for u in await response.json()]

    assert await uids(**{"from": moment}) == [old.uid, new.uid]
    assert await uids(**{"from": moment, "to": moment + 2 * 86400}) == [old.uid]  # ``to`` excluded
    assert await uids(range="updated", **{"from": moment + 3 * 86400}) == [old.uid]
    assert await uids(order_by="email", **{"from": moment}) == [new.uid, old.uid]
    assert await uids(order_by="created_at", ordering="desc") == [new.uid, old.uid, superadmin.user.uid]


async def test_extended_list_shows_the_profiles(
    api: Any, superadmin: Caller, make_user: Any, services: Any
) -> None:
    member = (await make_user()).user
    await give_profile(services, member, first_name="Ann", last_name="Smith", dob="1990-05-04")
    response = await api.get(
        f"{ADMIN}/users", params={"extended": "true", "uid": member.uid}, headers=superadmin.headers
    )
    (listed,) = await response.json()
    assert listed["created_at"].endswith("Z") and listed["updated_at"].endswith("Z")
    (profile,) = listed["profiles"]
    assert (profile["last_name"], profile["dob"], profile["state"]) == (
        "Smith",
        "1990-05-04",
        "submitted",
    )  # unmasked


async def test_list_reports_every_bad_parameter_at_once(api: Any, superadmin: Caller) -> None:
    params = {
        "level": "two",
        "range": "deleted",
        "from": "yesterday",
        "to": "99999999999999999",
        "ordering": "up",
        "order_by": "password_digest",
        "extended": "maybe",
        "page": "0",
    }
    response = await api.get(f"{ADMIN}/users", params=params, headers=superadmin.headers)
    assert await errors_of(response, 422) == [
        "admin.user.non_integer_level",
        "admin.user.invalid_range",
        "admin.user.non_integer_from",
        "admin.user.invalid_to",
        "user.ordering.invalid_ordering",
        "user.ordering.invalid_attribute",
        "admin.user.non_boolean_extended",
        "non_positive_page",
    ]


# --- GET /users/{uid} -------------------------------------------------------------------------------


async def test_get_shows_the_user_with_its_kyc_records_unmasked(
    api: Any, superadmin: Caller, make_user: Any, services: Any
) -> None:
    referrer = (await make_user()).user
    member = (await make_user()).user
    now = datetime.now(UTC)
    async with services.engine.begin() as conn:
        await conn.execute(update(users).where(users.c.id == member.id).values(referral_id=referrer.id))
        await SqlLabelRepository.put_in(conn, member.id, "email", "verified", "private", "by support")
        await conn.execute(
            phones.insert().values(
                user_id=member.id,
                country="GB",
                number="447911123456",
                validated_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            documents.insert().values(
                user_id=member.id,
                doc_type="passport",
                doc_number="AB1234567",
                upload="f00d.png",
                created_at=now,
                updated_at=now,
            )
        )
    await give_profile(services, member, first_name="Ann", last_name="Smith", dob="1990-05-04")
    await SqlDataStorageRepository(services.engine).create(member.id, "notes", '{"a": 1}')

    response = await api.get(f"{ADMIN}/users/{member.uid}", headers=superadmin.headers)
    assert response.status == 200
    body = await response.json()
    assert (body["uid"], body["email"], body["referral_uid"]) == (member.uid, member.email, referrer.uid)
    assert [
        (label["key"], label["value"], label["scope"], label["description"]) for label in body["labels"]
    ] == [("email", "verified", "private", "by support")]
    assert body["phones"][0]["number"] == "447911123456"
    assert (body["documents"][0]["doc_number"], body["documents"][0]["doc_type"]) == ("AB1234567", "passport")
    assert body["profiles"][0]["last_name"] == "Smith"
    assert [(s["title"], s["data"]) for s in body["data_storages"]] == [("notes", '{"a": 1}')]


async def test_get_of_an_unknown_uid_is_404(api: Any, superadmin: Caller) -> None:
    response = await api.get(f"{ADMIN_ALIAS}/users/IDFFFFFFFFFF", headers=superadmin.headers)
    assert await errors_of(response, 404) == ["admin.user.doesnt_exist"]


# --- POST /users/update, PUT /users -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "prefix", "path", "status"),
    [("POST", ADMIN, "/users/update", 201), ("PUT", ADMIN_ALIAS, "/users", 200)],
)
async def test_a_state_change_is_recorded_and_answered_with_the_user(
    api: Any,
    superadmin: Caller,
    make_user: Any,
    services: Any,
    prefix: str,
    method: str,
    path: str,
    status: int,
) -> None:
    member = (await make_user()).user
    response = await api.request(
        method, f"{prefix}{path}", json={"uid": member.uid, "state": "locked"}, headers=superadmin.headers
    )
    assert response.status == status, await response.text()
    assert (await response.json())["state"] == "locked"
    assert (await services.users.get_by_uid(member.uid)).state == "locked"
    (activity,) = await user_activities(services)
    assert (activity.action, activity.result, activity.user_id, activity.target_uid) == (
        "update",
        "succeed",
        superadmin.user.id,
        member.uid,
    )
    assert orjson.loads(activity.data) == {"state": "locked", "previous": "active"}


async def test_a_ban_takes_effect_at_the_decision_endpoint_at_once(
    api: Any, sign_in: Any, make_user: Any, services: Any, clock: Any
) -> None:
    admin = await sign_in("admin")
    account = await make_user(otp=True)
    member = account.user
    cookie, _ = await open_session(services, member, clock)
    key = await services.api_keys.create(holder_id=member.id)
    assert (await decide(api, "GET", BALANCES, cookie_headers(cookie)))[0] == 200
    assert (await decide(api, "GET", BALANCES, api_key_headers(key, now_ms(clock))))[0] == 200

    response = await api.post(
        f"{ADMIN}/users/update", json={"uid": member.uid, "state": "banned"}, headers=admin.headers
    )
    assert response.status == 201, await response.text()

    status, body, _ = await decide(api, "GET", BALANCES, cookie_headers(cookie))
    assert (status, body) == (401, error("authz.invalid_session"))
    status, body, _ = await decide(api, "GET", BALANCES, api_key_headers(key, now_ms(clock) + 1))
    assert (status, body) == (401, error("authz.apikey_not_active"))
    assert await services.sessions.list_for_user(member.uid) == []
    assert (await services.api_keys.get(key.kid)).state == "inactive"


async def test_turning_2fa_off_wipes_the_secret_and_the_label_and_deactivates_the_keys(
    api: Any, superadmin: Caller, make_user: Any, services: Any, clock: Any
) -> None:
    member = (await make_user(otp=True)).user
    await services.users.put_label(member.uid, "otp", "enabled", "private", AccountRules())
    key = await services.api_keys.create(holder_id=member.id)
    assert (await decide(api, "GET", BALANCES, api_key_headers(key, now_ms(clock))))[0] == 200

    response = await api.put(
        f"{ADMIN}/users", json={"uid": member.uid, "otp": False}, headers=superadmin.headers
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["otp"] is False
    assert await services.users.otp_secret(member.id) is None
    assert [label.key for label in await SqlLabelRepository(services.engine).for_user(member.id)] == []
    assert (await services.api_keys.get(key.kid)).state == "inactive"
    assert (await decide(api, "GET", BALANCES, api_key_headers(key, now_ms(clock) + 1)))[0] == 401
    (activity,) = await user_activities(services)
    assert orjson.loads(activity.data) == {"otp": False, "previous": True}


UPDATE_PARAMETER_CASES = [
    ("/users/update", {"state": "banned"}, ["admin.user.missing_uid"]),
    ("/users/update", {"uid": "ID1"}, ["admin.user.one_of_state_otp"]),
    (
        "/users/update",
        {"uid": "", "state": "banned", "otp": False},
        ["admin.user.empty_uid", "admin.user.one_of_state_otp"],
    ),
    ("/users/update", {"uid": "ID1", "email": "a@b.example"}, ["admin.user.one_of_state_otp"]),
    ("/users/update", {"uid": "ID1", "otp": "perhaps"}, ["admin.user.non_boolean_otp"]),
    ("/users/update", {"uid": "ID1", "state": " "}, ["admin.user.empty_state"]),
    (
        "/users",
        {"uid": "ID1", "state": "banned", "email": "a@b.example"},
        ["admin.user.one_of_state_otp_email"],
    ),
    ("/users", {"uid": "ID1"}, ["admin.user.one_of_state_otp_email"]),
]


async def test_update_parameters_are_checked_at_once(api: Any, superadmin: Caller) -> None:
    for path, body, keys in UPDATE_PARAMETER_CASES:
        method = "POST" if path == "/users/update" else "PUT"
        response = await api.request(method, f"{ADMIN}{path}", json=body, headers=superadmin.headers)
        assert await errors_of(response, 422) == keys, (path, body)


async def test_update_refusals(
    api: Any, superadmin: Caller, sign_in: Any, make_user: Any, services: Any
) -> None:
    member = (await make_user()).user
    other_superadmin = (await make_user(role="superadmin")).user
    admin = await sign_in("admin")

    async def refused(caller: Caller, body: dict[str, Any], method: str = "POST") -> list[str]:
        path = "/users/update" if method == "POST" else "/users"
        response = await api.request(method, f"{ADMIN_ALIAS}{path}", json=body, headers=caller.headers)
        assert response.status in (404, 422), await response.text()
        return (await response.json())["errors"]  # type: ignore[no-any-return]

    assert await refused(superadmin, {"uid": "IDFFFFFFFFFF", "state": "banned"}) == [
        "admin.user.doesnt_exist"
    ]
    assert await refused(superadmin, {"uid": member.uid, "state": "active"}) == ["admin.user.state_no_change"]
    assert await refused(superadmin, {"uid": member.uid, "state": "asleep"}) == ["admin.user.invalid_state"]
    assert await refused(superadmin, {"uid": member.uid, "otp": "true"}) == ["admin.user.enable_2fa"]
    assert await refused(superadmin, {"uid": member.uid, "otp": "false"}) == ["admin.user.otp_no_change"]
    assert await refused(superadmin, {"uid": superadmin.user.uid, "state": "banned"}) == [
        "admin.user.update_himself"
    ]
    assert await refused(admin, {"uid": other_superadmin.uid, "state": "banned"}) == [
        "admin.user.superadmin_change"
    ]
    assert await refused(admin, {"uid": member.uid, "email": "new@example.com"}, "PUT") == [
        "superadmin.user.update_email"
    ]
    assert await refused(superadmin, {"uid": member.uid, "email": member.email}, "PUT") == [
        "admin.user.email_no_change"
    ]
    assert await refused(superadmin, {"uid": member.uid, "email": "not an address"}, "PUT") == [
        "email.invalid"
    ]
    assert await refused(superadmin, {"uid": member.uid, "email": admin.user.email}, "PUT") == ["email.taken"]
    assert (await services.users.get_by_uid(member.uid)) == member
    assert await user_activities(services) == []


async def test_a_superadmin_changes_an_email_and_the_next_jwt_carries_it(
    api: Any, superadmin: Caller, make_user: Any, services: Any, clock: Any
) -> None:
    member = (await make_user()).user
    cookie, _ = await open_session(services, member, clock)
    response = await api.put(
        f"{ADMIN_ALIAS}/users",
        json={"uid": member.uid, "email": "new@example.com"},
        headers=superadmin.headers,
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["email"] == "new@example.com"
    _, _, headers = await decide(api, "GET", BALANCES, cookie_headers(cookie))
    assert (await bearer_claims(api, headers["Authorization"]))["email"] == "new@example.com"


# --- POST /users/role -------------------------------------------------------------------------------


async def test_a_role_change_takes_effect_at_the_decision_endpoint_at_once(
    api: Any, superadmin: Caller, make_user: Any, services: Any, clock: Any
) -> None:
    """An admin demoted to member loses the admin paths on the next request."""
    demoted = (await make_user(role="admin")).user
    cookie, _ = await open_session(services, demoted, clock)
    assert (await decide(api, "GET", "api/v2/barong/admin/users", cookie_headers(cookie)))[0] == 200

    response = await api.post(
        f"{ADMIN}/users/role", json={"uid": demoted.uid, "role": "member"}, headers=superadmin.headers
    )
    assert response.status == 201, await response.text()
    assert (await response.json())["role"] == "member"

    status, body, _ = await decide(api, "GET", "api/v2/barong/admin/users", cookie_headers(cookie))
    assert (status, body) == (401, error("authz.invalid_permission"))
    assert (await decide(api, "GET", BALANCES, cookie_headers(cookie)))[0] == 200
    (activity,) = await user_activities(services)
    assert (activity.target_uid, orjson.loads(activity.data)) == (
        demoted.uid,
        {"role": "member", "previous": "admin"},
    )


async def test_role_refusals(
    api: Any, superadmin: Caller, sign_in: Any, make_user: Any, services: Any, open_table: Any
) -> None:
    member = (await make_user()).user
    admin = await sign_in("admin")
    # The shipped table keeps admins off role changes; the admin rules below hold under any table.
    await open_table(api)

    async def refused(caller: Caller, body: dict[str, Any]) -> tuple[int, list[str]]:
        response = await api.post(f"{ADMIN_ALIAS}/users/role", json=body, headers=caller.headers)
        return response.status, (await response.json())["errors"]

    assert await refused(superadmin, {}) == (422, ["admin.user.missing_uid", "admin.user.missing_role"])
    assert await refused(superadmin, {"uid": "IDFFFFFFFFFF", "role": "admin"}) == (
        404,
        ["admin.user.doesnt_exist"],
    )
    assert await refused(superadmin, {"uid": member.uid, "role": "member"}) == (
        422,
        ["admin.user.role_no_change"],
    )
    assert await refused(superadmin, {"uid": member.uid, "role": "wizard"}) == (422, ["role.doesnt_exist"])
    assert await refused(superadmin, {"uid": superadmin.user.uid, "role": "admin"}) == (
        422,
        ["admin.user.update_himself"],
    )
    assert await refused(admin, {"uid": member.uid, "role": "superadmin"}) == (
        422,
        ["admin.user.not_superadmin"],
    )
    assert await refused(admin, {"uid": superadmin.user.uid, "role": "member"}) == (
        422,
        ["admin.user.superadmin_change"],
    )
    assert (await services.users.get_by_uid(member.uid)).role == "member"


# --- DELETE /users/data_storage ---------------------------------------------------------------------


async def test_delete_data_storage(api: Any, superadmin: Caller, make_user: Any, services: Any) -> None:
    member = (await make_user()).user
    storages = SqlDataStorageRepository(services.engine)
    await storages.create(member.id, "notes", "{}")
    await storages.create(member.id, "other", "{}")

    response = await api.delete(
        f"{ADMIN_ALIAS}/users/data_storage",
        params={"uid": member.uid, "title": "notes"},
        headers=superadmin.headers,
    )
    assert response.status == 204
    assert [s.title for s in await storages.for_user(member.id)] == ["other"]
    (activity,) = await user_activities(services)
    assert (activity.action, activity.target_uid, orjson.loads(activity.data)) == (
        "delete",
        member.uid,
        {"data_storage": "notes"},
    )

    again = await api.delete(
        f"{ADMIN_ALIAS}/users/data_storage",
        params={"uid": member.uid, "title": "notes"},
        headers=superadmin.headers,
    )
    assert await errors_of(again, 404) == ["admin.storage.doesnt_exist"]
    nobody = await api.delete(
        f"{ADMIN_ALIAS}/users/data_storage",
        params={"uid": "IDFFFFFFFFFF", "title": "x"},
        headers=superadmin.headers,
    )
    assert await errors_of(nobody, 404) == ["admin.user.doesnt_exist"]
    missing = await api.delete(f"{ADMIN_ALIAS}/users/data_storage", headers=superadmin.headers)
    assert await errors_of(missing, 422) == ["admin.user.missing_uid", "admin.user.missing_title"]


# --- GET /users/documents/pending -------------------------------------------------------------------


async def test_pending_documents_lists_labelled_and_unreviewed_uploads_longest_waiting_first(
    api: Any, superadmin: Caller, make_user: Any, services: Any
) -> None:
    labelled, uploaded, replaced, verified, nothing = [(await make_user()).user for _ in range(5)]
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    async with services.engine.begin() as conn:
        for user, when in ((uploaded, moment), (verified, moment)):
            await conn.execute(
                documents.insert().values(
                    user_id=user.id, doc_type="passport", upload="x.png", created_at=when, updated_at=when
                )
            )
        await SqlLabelRepository.put_in(conn, labelled.id, "document", "pending", "private")
        await SqlLabelRepository.put_in(conn, replaced.id, "document", "replaced", "private")
        await SqlLabelRepository.put_in(conn, verified.id, "document", "verified", "private")
        await SqlLabelRepository.put_in(conn, nothing.id, "document", "pending", "public")  # public: no

    response = await api.get(f"{ADMIN_ALIAS}/users/documents/pending", headers=superadmin.headers)
    assert response.status == 200
    assert [u["uid"] for u in await response.json()] == [uploaded.uid, labelled.uid, replaced.uid]
    assert response.headers["Total"] == "3"

    filtered = await api.get(
        f"{ADMIN}/users/documents/pending",
        params={"uid": labelled.uid, "extended": "true"},
        headers=superadmin.headers,
    )
    (listed,) = await filtered.json()
    assert [(label["key"], label["value"]) for label in listed["labels"]] == [("document", "pending")]
    assert {"documents", "phones", "profiles", "data_storages"} <= set(listed)

    bad = await api.get(
        f"{ADMIN}/users/documents/pending", params={"level": "x", "limit": "0"}, headers=superadmin.headers
    )
    assert await errors_of(bad, 422) == ["admin.user.non_integer_level", "invalid_limit"]


# --- GET /api_keys ----------------------------------------------------------------------------------


async def test_api_keys_of_a_user_without_secrets(
    api: Any, superadmin: Caller, make_user: Any, services: Any
) -> None:
    member = (await make_user(otp=True)).user
    first = await services.api_keys.create(holder_id=member.id)
    second = await services.api_keys.create(holder_id=member.id, algorithm="HS512")
    response = await api.get(
        f"{ADMIN_ALIAS}/api_keys",
        params={"uid": member.uid, "limit": "1", "page": "2"},
        headers=superadmin.headers,
    )
    assert response.status == 200
    assert response.headers["Total"] == "2"
    (listed,) = await response.json()
    assert listed["kid"] == second.kid and "secret" not in listed
    assert set(listed) == {"kid", "algorithm", "scope", "state", "created_at", "updated_at"}
    assert first.kid != second.kid

    missing = await api.get(f"{ADMIN_ALIAS}/api_keys", headers=superadmin.headers)
    assert await errors_of(missing, 422) == ["admin.api_key.missing_uid"]
    unknown = await api.get(
        f"{ADMIN}/api_keys", params={"uid": "IDFFFFFFFFFF"}, headers=superadmin.headers
    )
    assert await errors_of(unknown, 404) == ["admin.user.doesnt_exist"]


# --- abilities (the per-role table is tests/admin/test_abilities.py) --------------------------------


ABILITY_CASES = [
    ("support", "POST", "/users/labels", 401),  # support reads labels only
    ("accountant", "POST", "/users/update", 401),  # accountant reads users only
    ("compliance", "GET", "/api_keys", 401),  # no ability on APIKey
    ("member", "GET", "/users", 401),
    ("technical", "GET", "/api_keys", 422),  # may read keys: on to the parameters
    ("support", "POST", "/users/update", 422),  # manages users
]


async def test_abilities_guard_the_user_endpoints(api: Any, sign_in: Any, open_table: Any) -> None:
    callers = {role: await sign_in(role) for role in {case[0] for case in ABILITY_CASES}}
    await open_table(api)  # the abilities alone decide (the shipped table refuses some of these first)
    for role, method, path, status in ABILITY_CASES:
        response = await api.request(method, f"{ADMIN}{path}", headers=callers[role].headers)
        keys = await errors_of(response, status)
        assert (keys == ["admin.ability.not_permitted"]) == (status == 401), (role, path)
