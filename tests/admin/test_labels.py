"""Admin API: ``/admin/users/labels`` (seed 2.4): users holding a label, the private labels in use, and
creating, updating and deleting labels of either scope, over the real app on SQLite and PostgreSQL.

A private label moves the user's level and state; the change then counts at the decision endpoint at once,
as a state change does (a ``ban`` label bans: sessions revoked, API keys deactivated).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from identity.account_rules import AccountRules
from identity.labels import SqlLabelRepository
from identity.models import Activity
from tests.admin.conftest import ADMIN, ADMIN_ALIAS
from tests.authz.helpers import api_key_headers, cookie_headers, decide, error, now_ms, open_session
from tests.resource.helpers import Caller, errors_of

PREFIXES = pytest.mark.parametrize("prefix", [ADMIN, ADMIN_ALIAS])
BALANCES = "api/v2/peatio/account/balances"


def url(prefix: str = ADMIN, rest: str = "") -> str:
    return f"{prefix}/users/labels{rest}"


async def labels_of(services: Any, user: Any) -> list[tuple[str, str, str, str | None]]:
    found = await SqlLabelRepository(services.engine).for_user(user.id)
    return [(label.key, label.value, label.scope, label.description) for label in found]


async def label_activities(services: Any) -> list[Activity]:
    found = await services.activities.list(category="admin")
    return [a for a in found if a.topic == "users" and a.result != "denied"]


# --- POST /users/labels -----------------------------------------------------------------------------


@PREFIXES
async def test_create_makes_a_public_label_by_default_and_records_it(
    api: Any, superadmin: Caller, make_user: Any, services: Any, prefix: str
) -> None:
    member = (await make_user()).user
    body = {"uid": member.uid, "key": " Tier ", "value": "GOLD", "description": "from the import"}
    response = await api.post(url(prefix), json=body, headers=superadmin.headers)
    assert response.status == 201, await response.text()
    created = await response.json()
    assert {k: created[k] for k in ("key", "value", "scope", "description")} == {
        "key": "tier",
        "value": "gold",
        "scope": "public",
        "description": "from the import",
    }
    assert created["created_at"].endswith("Z")
    assert await labels_of(services, member) == [("tier", "gold", "public", "from the import")]
    (activity,) = await label_activities(services)
    assert (activity.action, activity.target_uid, activity.user_id) == (
        "create",
        member.uid,
        superadmin.user.id,
    )
    assert orjson.loads(activity.data) == {"label": {"key": "tier", "value": "gold", "scope": "public"}}


async def test_a_private_label_recomputes_level_and_state(
    api: Any, superadmin: Caller, make_user: Any, services: Any
) -> None:
    member = (await make_user(state="pending")).user
    response = await api.post(
        url(),
        json={"uid": member.uid, "key": "email", "value": "verified", "scope": "private"},
        headers=superadmin.headers,
    )
    assert response.status == 201, await response.text()
    after = await services.users.get_by_uid(member.uid)
    assert (after.state, after.level) == ("active", 1)


async def test_a_private_ban_label_bans_at_the_decision_endpoint_at_once(
    api: Any, superadmin: Caller, make_user: Any, services: Any, clock: Any
) -> None:
    member = (await make_user(otp=True)).user
    await services.users.put_label(member.uid, "email", "verified", "private", AccountRules())
    cookie, _ = await open_session(services, member, clock)
    key = await services.api_keys.create(holder_id=member.id)
    assert (await decide(api, "GET", BALANCES, cookie_headers(cookie)))[0] == 200

    response = await api.post(
        url(),
        json={"uid": member.uid, "key": "ban", "value": "fraud", "scope": "private"},
        headers=superadmin.headers,
    )
    assert response.status == 201, await response.text()
    assert (await services.users.get_by_uid(member.uid)).state == "banned"
    assert (await decide(api, "GET", BALANCES, cookie_headers(cookie)))[:2] == (
        401,
        error("authz.invalid_session"),
    )
    status, body, _ = await decide(api, "GET", BALANCES, api_key_headers(key, now_ms(clock)))
    assert (status, body) == (401, error("authz.apikey_not_active"))

    # Removing the label makes the account active again (Barong recomputes the state from the labels).
    removed = await api.delete(
        url(), params={"uid": member.uid, "key": "ban", "scope": "private"}, headers=superadmin.headers
    )
    assert removed.status == 204
    assert (await services.users.get_by_uid(member.uid)).state == "active"


async def test_create_reports_every_bad_parameter_at_once(api: Any, superadmin: Caller) -> None:
    response = await api.post(
        url(), json={"key": "k!", "scope": "secret", "description": "d" * 256}, headers=superadmin.headers
    )
    assert await errors_of(response, 422) == [
        "admin.user.missing_uid",
        "admin.user.missing_value",
        "key.too_short",
        "key.invalid",
        "scope.inclusion",
        "description.too_long",
    ]
    blank = await api.post(
        url(), json={"uid": " ", "key": "", "value": "ok-value"}, headers=superadmin.headers
    )
    assert await errors_of(blank, 422) == ["admin.user.empty_uid", "admin.user.empty_key"]


async def test_create_refusals(
    api: Any, superadmin: Caller, sign_in: Any, make_user: Any, services: Any
) -> None:
    member = (await make_user()).user
    admin = await sign_in("admin")
    label = {"key": "tier", "value": "gold"}
    unknown = await api.post(url(), json={"uid": "IDFFFFFFFFFF", **label}, headers=superadmin.headers)
    assert await errors_of(unknown, 404) == ["admin.user.doesnt_exist"]
    assert (
        await api.post(url(), json={"uid": member.uid, **label}, headers=superadmin.headers)
    ).status == 201
    again = await api.post(
        url(), json={"uid": member.uid, **label, "value": "silver"}, headers=superadmin.headers
    )
    assert await errors_of(again, 422) == ["key.taken"]
    touching = await api.post(url(), json={"uid": superadmin.user.uid, **label}, headers=admin.headers)
    assert await errors_of(touching, 422) == ["admin.user.superadmin_change"]
    assert await labels_of(services, member) == [("tier", "gold", "public", None)]


# --- POST /users/labels/update, PUT /users/labels ---------------------------------------------------


@PREFIXES
async def test_post_update_changes_a_label_or_creates_it_unless_replace_is_false(
    api: Any, superadmin: Caller, make_user: Any, services: Any, prefix: str
) -> None:
    member = (await make_user()).user
    base = {"uid": member.uid, "key": "tier", "scope": "public"}
    created = await api.post(
        url(prefix, "/update"), json={**base, "value": "gold"}, headers=superadmin.headers
    )
    assert created.status == 201, await created.text()
    changed = await api.post(
        url(prefix, "/update"),
        json={**base, "value": "silver", "description": "downgraded"},
        headers=superadmin.headers,
    )
    assert changed.status == 201
    assert (await changed.json())["value"] == "silver"
    assert await labels_of(services, member) == [("tier", "silver", "public", "downgraded")]
    refused = await api.post(
        url(prefix, "/update"),
        json={**base, "key": "other", "value": "x-y-z", "replace": "false"},
        headers=superadmin.headers,
    )
    assert await errors_of(refused, 404) == ["admin.label.doesnt_exist"]
    odd = await api.post(
        url(prefix, "/update"),
        json={**base, "value": "gold", "replace": "sometimes"},
        headers=superadmin.headers,
    )
    assert await errors_of(odd, 422) == ["admin.user.non_boolean_replace"]
    assert [a.action for a in await label_activities(services)] == ["create", "update"]


@PREFIXES
async def test_put_updates_an_existing_label_only(
    api: Any, superadmin: Caller, make_user: Any, services: Any, prefix: str
) -> None:
    member = (await make_user()).user
    await services.users.put_label(member.uid, "tier", "gold", "private", AccountRules())
    body = {"uid": member.uid, "key": "tier", "scope": "private", "value": "platinum"}
    response = await api.put(url(prefix), json=body, headers=superadmin.headers)
    assert response.status == 200, await response.text()
    assert (await response.json())["value"] == "platinum"
    assert await labels_of(services, member) == [("tier", "platinum", "private", None)]
    public = await api.put(url(prefix), json={**body, "scope": "public"}, headers=superadmin.headers)
    assert await errors_of(public, 404) == ["admin.label.doesnt_exist"]
    missing = await api.put(url(prefix), json={"uid": member.uid, "value": "ab"}, headers=superadmin.headers)
    assert await errors_of(missing, 422) == [
        "admin.user.missing_key",
        "admin.user.missing_scope",
        "value.too_short",
    ]


# --- DELETE /users/labels ---------------------------------------------------------------------------


@PREFIXES
async def test_delete_removes_the_label_of_that_scope(
    api: Any, superadmin: Caller, make_user: Any, services: Any, prefix: str
) -> None:
    member = (await make_user()).user
    await services.users.put_label(member.uid, "tier", "gold", "public", AccountRules())
    await services.users.put_label(member.uid, "tier", "gold", "private", AccountRules())
    response = await api.delete(
        url(prefix), params={"uid": member.uid, "key": "tier", "scope": "public"}, headers=superadmin.headers
    )
    assert response.status == 204
    assert await labels_of(services, member) == [("tier", "gold", "private", None)]
    again = await api.delete(
        url(prefix), params={"uid": member.uid, "key": "tier", "scope": "public"}, headers=superadmin.headers
    )
    assert await errors_of(again, 404) == ["admin.label.doesnt_exist"]
    nobody = await api.delete(
        url(prefix),
        params={"uid": "IDFFFFFFFFFF", "key": "tier", "scope": "public"},
        headers=superadmin.headers,
    )
    assert await errors_of(nobody, 404) == ["admin.user.doesnt_exist"]
    (activity,) = await label_activities(services)
    assert (activity.action, orjson.loads(activity.data)) == (
        "delete",
        {"label": {"key": "tier", "scope": "public"}},
    )


# --- GET /users/labels, /users/labels/list ----------------------------------------------------------


@PREFIXES
async def test_users_holding_a_label_are_paginated(
    api: Any, superadmin: Caller, make_user: Any, services: Any, prefix: str
) -> None:
    holders = [(await make_user()).user for _ in range(3)]
    other = (await make_user()).user
    for scope, user in zip(("public", "private", "public"), holders, strict=True):
        await services.users.put_label(user.uid, "tier", "gold", scope, AccountRules())
    await services.users.put_label(other.uid, "tier", "silver", "public", AccountRules())

    response = await api.get(
        url(prefix), params={"key": "tier", "value": "gold", "limit": "2"}, headers=superadmin.headers
    )
    assert response.status == 200
    assert response.headers["Total"] == "3"
    assert [u["uid"] for u in await response.json()] == [holders[0].uid, holders[1].uid]
    missing = await api.get(url(prefix), headers=superadmin.headers)
    assert await errors_of(missing, 422) == ["admin.user.missing_key", "admin.user.missing_value"]


@PREFIXES
async def test_list_counts_the_private_labels_in_use_as_barong_does(
    api: Any, superadmin: Caller, make_user: Any, services: Any, prefix: str
) -> None:
    empty = await api.get(url(prefix, "/list"), headers=superadmin.headers)
    assert (empty.status, await empty.json()) == (200, {})
    a, b = (await make_user()).user, (await make_user()).user
    for user in (a, b):
        await services.users.put_label(user.uid, "email", "verified", "private", AccountRules())
    await services.users.put_label(a.uid, "document", "pending", "private", AccountRules())
    await services.users.put_label(b.uid, "tier", "gold", "public", AccountRules())  # public: not counted
    response = await api.get(url(prefix, "/list"), headers=superadmin.headers)
    assert response.status == 200
    # Rails' ``group(:key, :value).size`` as JSON: the keys are the pairs written as arrays.
    assert await response.text() == '{"[\\"document\\", \\"pending\\"]":1,"[\\"email\\", \\"verified\\"]":2}'


# --- abilities ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "method", "rest", "status"),
    [
        ("accountant", "DELETE", "", 401),  # reads labels only
        ("technical", "PUT", "", 401),
        ("support", "POST", "/update", 401),
        ("compliance", "DELETE", "", 422),  # manages labels: on to the parameters
        ("accountant", "GET", "/list", 200),  # reads users
    ],
)
async def test_abilities_guard_the_label_endpoints(
    api: Any, sign_in: Any, open_table: Any, role: str, method: str, rest: str, status: int
) -> None:
    caller = await sign_in(role)
    await open_table(api)  # the abilities alone decide (the shipped table refuses some of these first)
    response = await api.request(method, url(ADMIN, rest), headers=caller.headers)
    assert response.status == status, await response.text()
    if status == 401:
        assert await errors_of(response, 401) == ["admin.ability.not_permitted"]
