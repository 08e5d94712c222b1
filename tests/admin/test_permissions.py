"""Admin API: ``/admin/permissions`` (barong-behavior.md §7.1) over the real app, on SQLite and PostgreSQL.

Every change must be recorded as an admin activity in the same transaction, and applied by the decision
endpoint at once (the instance reloads its permissions on its own announcement).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from identity.models import Permission
from tests.admin.conftest import ADMIN, ADMIN_ALIAS
from tests.authz.helpers import cookie_headers, decide, eventually, new_user, open_session
from tests.resource.helpers import Caller, errors_of

# Every route answers under both prefixes: the tests of each route take one or the other.
MAIN = pytest.mark.parametrize("prefix", [ADMIN])
ALIAS = pytest.mark.parametrize("prefix", [ADMIN_ALIAS])
BALANCES = "api/v2/peatio/account/balances"  # members: ACCEPT ALL api/v2/peatio/account


def url(prefix: str = ADMIN) -> str:
    return f"{prefix}/permissions"


async def stored(services: Any) -> list[Permission]:
    return await services.permissions.list_all()  # type: ignore[no-any-return]


async def permission_activities(services: Any) -> list[tuple[str, int | None, dict[str, Any]]]:
    """(action, admin's user id, data) of the admin activities on topic ``permissions``, oldest first."""
    found = await services.activities.list(category="admin")
    return [(a.action, a.user_id, orjson.loads(a.data)) for a in found if a.topic == "permissions"]


async def not_superadmins(services: Any) -> Permission:
    """The first permission of another role than superadmin: changing it never touches the superadmins'
    access to this API (which a change may not take away)."""
    return next(p for p in await stored(services) if p.role != "superadmin")


def fields(p: Permission) -> dict[str, Any]:
    return {"id": p.id, "role": p.role, "verb": p.verb, "path": p.path, "action": p.action, "topic": p.topic}


# --- GET --------------------------------------------------------------------------------------------


@ALIAS
async def test_list_is_paginated_in_id_order(
    api: Any, superadmin: Caller, services: Any, prefix: str
) -> None:
    everything = await stored(services)
    response = await api.get(url(prefix), params={"page": "2", "limit": "3"}, headers=superadmin.headers)
    assert response.status == 200
    listed = await response.json()
    assert [p["id"] for p in listed] == [p.id for p in everything[3:6]]
    assert set(listed[0]) == {"id", "action", "role", "verb", "path", "topic", "created_at", "updated_at"}
    first = everything[3]
    assert listed[0]["role"] == first.role and listed[0]["path"] == first.path
    assert listed[0]["created_at"].endswith("Z")
    last = -(-len(everything) // 3)
    assert (response.headers["Total"], response.headers["Page"], response.headers["Per-Page"]) == (
        str(len(everything)),
        "2",
        "3",
    )
    assert (
        'rel="first"' in response.headers["Link"]
        and f'page={last}&limit=3>; rel="last"' in response.headers["Link"]
    )


async def test_list_refuses_bad_pages_at_once(api: Any, superadmin: Caller) -> None:
    response = await api.get(url(), params={"page": "0", "limit": "x"}, headers=superadmin.headers)
    assert await errors_of(response, 422) == ["non_positive_page", "non_integer_limit"]


# --- POST -------------------------------------------------------------------------------------------


@MAIN
async def test_create_answers_201_with_the_stored_permission_and_records_it(
    api: Any, superadmin: Caller, services: Any, prefix: str
) -> None:
    body = {
        "role": "member",
        "verb": "get",
        "path": "api/v2/peatio/public/x",
        "action": "audit",
        "topic": "x",
    }
    response = await api.post(url(prefix), json=body, headers=superadmin.headers)
    assert response.status == 201, await response.text()
    entity = await response.json()
    [created] = [p for p in await stored(services) if p.path == "api/v2/peatio/public/x"]
    assert entity["id"] == created.id
    assert (entity["role"], entity["verb"], entity["path"], entity["action"], entity["topic"]) == (
        "member",
        "GET",
        "api/v2/peatio/public/x",
        "AUDIT",
        "x",
    )
    assert (created.verb, created.action, created.topic) == ("GET", "AUDIT", "x")
    [(action, admin_id, data)] = await permission_activities(services)
    assert (action, admin_id) == ("create", superadmin.user.id)
    assert data["after"] == fields(created)


async def test_create_takes_a_form_body_and_no_topic(api: Any, superadmin: Caller, services: Any) -> None:
    form = {"role": "admin", "verb": "ALL", "path": "api/v2/x", "action": "Drop", "topic": " "}
    response = await api.post(url(), data=form, headers=superadmin.headers)
    assert response.status == 201, await response.text()
    entity = await response.json()
    assert (entity["verb"], entity["action"], entity["topic"]) == ("ALL", "DROP", None)


#: (body, error keys) of refused creations.
BAD_CREATES = [
    (
        {},
        [
            "admin.permission.missing_role",
            "admin.permission.missing_verb",
            "admin.permission.missing_path",
            "admin.permission.missing_action",
        ],
    ),
    (
        {"role": " ", "verb": "", "path": "api/v2", "action": "accept"},
        ["admin.permission.empty_role", "admin.permission.empty_verb"],
    ),
    (
        {"role": "member", "verb": "fetch", "path": "api/v2", "action": "accept"},
        ["admin.permissions.invalid_verb"],
    ),
    (
        {"role": "member", "verb": "get", "path": "api/v2", "action": "allow"},
        ["admin.permissions.invalid_action"],
    ),
    (
        {"role": "member", "verb": "x", "path": "/api/v2", "action": "y"},
        [
            "admin.permissions.invalid_verb",
            "admin.permissions.invalid_action",
            "admin.permissions.invalid_path",
        ],
    ),
    (
        {"role": "member", "verb": "get", "path": "api/v2 x", "action": "accept"},
        ["admin.permissions.invalid_path"],
    ),
    (
        {"role": ["member"], "verb": "get", "path": "api/v2", "action": "accept"},
        ["admin.permission.invalid_role"],
    ),
    (
        {"role": "member", "verb": "get", "path": "a" * 256, "action": "accept", "topic": "t" * 65},
        ["path.too_long", "topic.too_long"],
    ),
    (
        {"role": "wizard", "verb": "get", "path": "api/v2", "action": "accept"},
        ["admin.permission.role_doesnt_exist"],
    ),
]


async def test_create_refuses_bad_parameters_naming_each(api: Any, superadmin: Caller, services: Any) -> None:
    before = await stored(services)
    for body, keys in BAD_CREATES:
        response = await api.post(url(), json=body, headers=superadmin.headers)
        assert await errors_of(response, 422) == keys, body
    assert await stored(services) == before
    assert await permission_activities(services) == []


# --- PUT --------------------------------------------------------------------------------------------


@ALIAS
async def test_update_changes_the_given_fields_and_records_before_and_after(
    api: Any, superadmin: Caller, services: Any, prefix: str
) -> None:
    target = await not_superadmins(services)
    body = {"id": str(target.id), "verb": "post", "topic": "orders", "role": "member"}
    response = await api.put(url(prefix), json=body, headers=superadmin.headers)
    assert response.status == 200, await response.text()
    entity = await response.json()
    assert (entity["id"], entity["verb"], entity["topic"], entity["role"], entity["path"]) == (
        target.id,
        "POST",
        "orders",
        "member",
        target.path,
    )
    [changed] = [p for p in await stored(services) if p.id == target.id]
    assert (changed.verb, changed.topic, changed.role, changed.action) == (
        "POST",
        "orders",
        "member",
        target.action,
    )
    assert changed.created_at == target.created_at and changed.updated_at != target.updated_at
    [(action, admin_id, data)] = await permission_activities(services)
    assert (action, admin_id) == ("update", superadmin.user.id)
    assert data["before"] == fields(target) and data["after"] == fields(changed)


async def test_update_takes_the_id_from_the_query_and_fields_from_a_form(
    api: Any, superadmin: Caller, services: Any
) -> None:
    target = await not_superadmins(services)
    response = await api.put(
        url(), params={"id": target.id}, data={"path": "api/v2/new"}, headers=superadmin.headers
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["path"] == "api/v2/new"


#: (body, status, error keys) of refused updates; "{id}" stands for the id of an existing permission.
BAD_UPDATES = [
    ({"verb": "get"}, 422, ["admin.permission.missing_id"]),
    (
        {"id": "one", "verb": "fetch"},
        422,
        ["admin.permission.invalid_id", "admin.permissions.invalid_verb"],
    ),
    ({"id": "", "action": "all"}, 422, ["admin.permission.empty_id", "admin.permissions.invalid_action"]),
    ({"id": "{id}", "verb": "fetch"}, 422, ["admin.permissions.invalid_verb"]),
    ({"id": "{id}", "action": "all"}, 422, ["admin.permissions.invalid_action"]),  # Barong stored "ALL"
    (
        {"id": "{id}", "path": "/api/v2", "role": ""},
        422,
        ["admin.permission.empty_role", "admin.permissions.invalid_path"],
    ),
    ({"id": "{id}", "role": "wizard"}, 422, ["admin.permission.role_doesnt_exist"]),
    ({"id": "999999", "verb": "get"}, 404, ["admin.permission.doesnt_exist"]),
    ({"id": "9" * 30, "verb": "get"}, 404, ["admin.permission.doesnt_exist"]),
]


async def test_update_validates_as_create_does(api: Any, superadmin: Caller, services: Any) -> None:
    before = await stored(services)
    for body, status, keys in BAD_UPDATES:
        given = {**body, "id": before[0].id} if body.get("id") == "{id}" else body
        response = await api.put(url(), json=given, headers=superadmin.headers)
        assert await errors_of(response, status) == keys, body
    assert await stored(services) == before
    assert await permission_activities(services) == []


async def test_update_without_fields_changes_nothing(api: Any, superadmin: Caller, services: Any) -> None:
    before = await stored(services)
    response = await api.put(url(), json={"id": before[0].id}, headers=superadmin.headers)
    assert response.status == 200
    assert (await response.json())["id"] == before[0].id
    assert await stored(services) == before
    assert await permission_activities(services) == []


# --- DELETE -----------------------------------------------------------------------------------------


@MAIN
async def test_delete_answers_204_and_records_what_was_deleted(
    api: Any, superadmin: Caller, services: Any, prefix: str
) -> None:
    before = await stored(services)
    target = before[-1]
    response = await api.delete(url(prefix), params={"id": str(target.id)}, headers=superadmin.headers)
    assert response.status == 204
    assert await response.read() == b""
    assert await stored(services) == before[:-1]
    [(action, admin_id, data)] = await permission_activities(services)
    assert (action, admin_id, data["before"]) == ("delete", superadmin.user.id, fields(target))
    again = await api.delete(url(prefix), params={"id": str(target.id)}, headers=superadmin.headers)
    assert await errors_of(again, 404) == ["admin.permission.doesnt_exist"]


async def test_delete_takes_the_id_from_a_json_body_and_refuses_a_bad_one(
    api: Any, superadmin: Caller, services: Any
) -> None:
    missing = await api.delete(url(), headers=superadmin.headers)
    assert await errors_of(missing, 422) == ["admin.permission.missing_id"]
    bad = await api.delete(url(), json={"id": "1; drop"}, headers=superadmin.headers)
    assert await errors_of(bad, 422) == ["admin.permission.invalid_id"]
    target = await not_superadmins(services)
    assert (await api.delete(url(), json={"id": target.id}, headers=superadmin.headers)).status == 204


# --- the decision endpoint ----------------------------------------------------------------------------


async def test_a_drop_added_through_the_api_denies_at_once_and_deleting_it_allows_again(
    api: Any, superadmin: Caller, services: Any, clock: Any
) -> None:
    member = await new_user(services)
    cookie, _ = await open_session(services, member, clock)

    async def balances() -> int:
        status, _body, _headers = await decide(api, "GET", BALANCES, cookie_headers(cookie))
        return status

    assert await balances() == 200
    body = {"role": "member", "verb": "GET", "path": "api/v2/peatio/account/bal", "action": "DROP"}
    created = await api.post(url(), json=body, headers=superadmin.headers)
    assert created.status == 201
    assert await eventually(balances, lambda status: status == 401) == 401
    _, denial, _ = await decide(api, "GET", BALANCES, cookie_headers(cookie))
    assert denial == {"errors": ["authz.invalid_permission"]}

    deleted = await api.delete(url(), params={"id": (await created.json())["id"]}, headers=superadmin.headers)
    assert deleted.status == 204
    assert await eventually(balances, lambda status: status == 200) == 200


async def test_an_update_is_applied_at_once(api: Any, superadmin: Caller, services: Any, clock: Any) -> None:
    member = await new_user(services)
    cookie, _ = await open_session(services, member, clock)
    [accept] = [p for p in await stored(services) if (p.role, p.path) == ("member", "api/v2/peatio/account")]

    async def balances() -> int:
        return (await decide(api, "GET", BALANCES, cookie_headers(cookie)))[0]

    assert await balances() == 200
    response = await api.put(url(), json={"id": accept.id, "verb": "POST"}, headers=superadmin.headers)
    assert response.status == 200
    assert await eventually(balances, lambda status: status == 401) == 401


# --- the superadmins' own access ----------------------------------------------------------------------

LOCKOUT = ["admin.permission.last_superadmin_access"]
#: The requests a superadmin needs to repair the permissions, under both spellings of the admin API.
REPAIR = [
    (verb, f"{prefix}/permissions".lstrip("/"))
    for verb in ("GET", "POST", "PUT", "DELETE")
    for prefix in (ADMIN, ADMIN_ALIAS)
]
ALLOWED = [200] * len(REPAIR)


async def superadmins_everything(services: Any) -> Permission:
    """The default superadmin row that opens the whole API: ALL api/v2 ACCEPT."""
    rows = await stored(services)
    [row] = [p for p in rows if (p.role, p.path, p.action) == ("superadmin", "api/v2", "ACCEPT")]
    return row


async def test_changes_that_would_lock_every_superadmin_out_of_this_api_are_refused(
    api: Any, superadmin: Caller, services: Any
) -> None:
    before = await stored(services)
    everything = await superadmins_everything(services)
    drop = {"role": "superadmin", "action": "drop"}
    own = superadmin.headers
    refused = [
        await api.delete(url(), params={"id": everything.id}, headers=own),
        await api.put(url(ADMIN_ALIAS), json={"id": everything.id, "role": "admin"}, headers=own),
        await api.put(url(), json={"id": everything.id, "verb": "get"}, headers=own),  # no writes left
        await api.put(url(), json={"id": everything.id, "path": "api/v2/peatio"}, headers=own),
        await api.put(url(), json={"id": everything.id, "action": "audit"}, headers=own),
        await api.post(url(), json={**drop, "verb": "delete", "path": "api/v2/barong/admin"}, headers=own),
        # The other spelling of the admin API's paths: a DROP written so holds for both.
        await api.post(url(), json={**drop, "verb": "all", "path": "api/v2/admin/permissions"}, headers=own),
    ]
    for response in refused:
        assert await errors_of(response, 422) == LOCKOUT
    assert await stored(services) == before
    assert await permission_activities(services) == []


async def test_the_superadmins_may_narrow_their_access_to_what_repairs_it_and_the_decision_agrees(
    api: Any, superadmin: Caller, services: Any, clock: Any
) -> None:
    cookie, csrf = await open_session(services, superadmin.user, clock)

    headers = cookie_headers(cookie, csrf=csrf)

    async def decisions() -> list[int]:
        return [(await decide(api, verb, path, headers))[0] for verb, path in REPAIR]

    assert await decisions() == ALLOWED
    everything = await superadmins_everything(services)
    # Anything else may be dropped.
    elsewhere = {"role": "superadmin", "verb": "all", "path": "api/v2/barong/admin/users", "action": "drop"}
    assert (await api.post(url(), json=elsewhere, headers=superadmin.headers)).status == 201
    # A narrower ACCEPT written in the alias spelling keeps them in, so the broad one may go.
    narrow = {"role": "superadmin", "verb": "all", "path": "api/v2/admin/permissions", "action": "accept"}
    kept = await api.post(url(ADMIN_ALIAS), json=narrow, headers=superadmin.headers)
    assert kept.status == 201, await kept.text()
    assert (await api.delete(url(), params={"id": everything.id}, headers=superadmin.headers)).status == 204

    assert await eventually(decisions, lambda statuses: statuses == ALLOWED) == ALLOWED
    users = cookie_headers(cookie)
    assert (await decide(api, "GET", "api/v2/barong/admin/users", users))[0] == 401
    last = await api.delete(url(), params={"id": (await kept.json())["id"]}, headers=superadmin.headers)
    assert await errors_of(last, 422) == LOCKOUT
    assert await decisions() == ALLOWED


async def test_two_deletions_at_once_cannot_lock_the_superadmins_out_between_them(
    api: Any, superadmin: Caller, services: Any
) -> None:
    everything = await superadmins_everything(services)
    narrow = {"role": "superadmin", "verb": "all", "path": "api/v2/barong/admin/permissions", "action": "accept"}
    created = await api.post(url(), json=narrow, headers=superadmin.headers)
    assert created.status == 201
    # Either row alone keeps the repair open: each deletion is judged against the table the other left.
    ids = [everything.id, (await created.json())["id"]]
    answers = await asyncio.gather(
        *(api.delete(url(), params={"id": ident}, headers=superadmin.headers) for ident in ids)
    )
    assert sorted(response.status for response in answers) == [204, 422]
    assert len([p for p in await stored(services) if p.id in ids]) == 1


# --- abilities ----------------------------------------------------------------------------------------


async def test_the_abilities_let_an_admin_read_permissions_but_not_change_them(
    api: Any, sign_in: Any, services: Any, open_table: Any
) -> None:
    admin = await sign_in("admin")
    await open_table(api)  # the shipped table drops the permissions API for admins before the abilities
    assert (await api.get(url(), headers=admin.headers)).status == 200
    target = (await stored(services))[0]
    body = {"role": "member", "verb": "get", "path": "api/v2", "action": "accept"}
    denied = [
        await api.post(url(), json=body, headers=admin.headers),
        await api.put(url(), json={"id": target.id, "verb": "get"}, headers=admin.headers),
        await api.delete(url(), params={"id": target.id}, headers=admin.headers),
    ]
    for response in denied:
        assert await errors_of(response, 401) == ["admin.ability.not_permitted"]
    assert (await stored(services))[0] == target


async def test_roles_without_the_ability_cannot_even_read(api: Any, sign_in: Any, open_table: Any) -> None:
    await open_table(api)  # the table would refuse them first (authz.invalid_permission)
    for role in ("member", "technical"):
        caller = await sign_in(role)
        # Denied before the parameters are looked at.
        response = await api.get(url(), params={"page": "x"}, headers=caller.headers)
        assert await errors_of(response, 401) == ["admin.ability.not_permitted"], role


async def test_without_a_bearer_jwt_nothing_is_answered(api: Any) -> None:
    response = await api.post(url(), json={"role": "member"})
    assert await errors_of(response, 401) == ["jwt.decode_and_verify"]
