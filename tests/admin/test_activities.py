"""``GET /admin/activities`` and ``GET /admin/activities/admin``: the activity log, its filters and keys."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from identity.activity_log import ClientInfo
from identity.admin.actor import Actor
from identity.http.entities import iso
from identity.models import Activity
from tests.admin.conftest import ADMIN, ADMIN_ALIAS
from tests.authz.helpers import admin_activities
from tests.identity.helpers import UA, browser, login, with_cookie
from tests.resource.helpers import bearer, errors_of

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
IP = "81.2.69.10"
PAGE_KEYS = ["non_integer_page", "non_positive_page", "non_integer_limit", "invalid_limit"]


def at(offset: int) -> datetime:
    return datetime.fromtimestamp(T0 + offset, UTC)


def user_activity(user: Any, topic: str, action: str, offset: int, result: str = "succeed") -> Activity:
    return Activity(
        category="user",
        topic=topic,
        action=action,
        result=result,
        user_id=user.id,
        user_ip=IP,
        user_ip_country="United Kingdom",
        user_agent=UA,
        data='{"reason":"Invalid Email or Password"}' if result == "failed" else None,
        created_at=at(offset),
    )


def user_json(user: Any, referral_uid: str | None = None) -> dict[str, Any]:
    return {
        "email": user.email,
        "uid": user.uid,
        "role": user.role,
        "level": user.level,
        "otp": user.otp,
        "state": user.state,
        "referral_uid": referral_uid,
        "data": user.data,
        "username": user.username,
    }


@pytest.fixture
async def log(services: Any, make_user: Any) -> dict[str, Any]:
    """Alice (referred by nobody) and Bob (referred by Alice), their user activities at T0..T0+300, and
    admin activities of an admin about Bob, of the CLI, and one without a target."""
    alice = (await make_user(email="alice@example.com")).user
    bob = await services.users.update(
        (await make_user(email="bob@example.com")).user.uid, referral_id=alice.id
    )
    boss = (await make_user(email="boss@example.com", role="admin")).user
    entries = [
        user_activity(alice, "account", "signup", 0),
        user_activity(alice, "session", "login", 60),
        user_activity(bob, "account", "signup", 120),
        user_activity(bob, "session", "login", 180, "failed"),
        user_activity(bob, "session", "login", 240),
        user_activity(alice, "password", "password change", 300),
    ]
    client = ClientInfo(ip=IP, user_agent=UA, country="United Kingdom")
    admin_entries = [
        Actor(boss, client).activity("users", "update", target_uid=bob.uid, data={"state": "banned"}),
        Actor.cli().activity("permissions", "create", data={"role": "member"}),
        Actor(boss, client).activity("restrictions", "delete", data={"id": 7}),
    ]
    for offset, entry in zip((400, 500, 600), admin_entries, strict=True):
        entries.append(replace(entry, created_at=at(offset)))
    await services.activities.add_many(entries)
    return {"alice": alice, "bob": bob, "boss": boss}


async def listing(api: Any, caller: Any, path: str = "/activities", **params: Any) -> list[dict[str, Any]]:
    response = await api.get(f"{ADMIN}{path}", params=params, headers=caller.headers)
    assert response.status == 200, await response.text()
    return await response.json()  # type: ignore[no-any-return]


def summary(entries: list[dict[str, Any]]) -> list[tuple[str | None, str, str, str]]:
    return [((e.get("user") or {}).get("email"), e["topic"], e["action"], e["result"]) for e in entries]


# --- /activities ---------------------------------------------------------------------------------------


async def test_user_activities_are_listed_newest_first_with_their_user(
    api: Any, superadmin: Any, log: Any
) -> None:
    entries = await listing(api, superadmin, to=str(T0 + 10_000))
    assert summary(entries) == [
        ("alice@example.com", "password", "password change", "succeed"),
        ("bob@example.com", "session", "login", "succeed"),
        ("bob@example.com", "session", "login", "failed"),
        ("bob@example.com", "account", "signup", "succeed"),
        ("alice@example.com", "session", "login", "succeed"),
        ("alice@example.com", "account", "signup", "succeed"),
    ]
    failed = entries[2]
    assert failed == {
        "id": failed["id"],
        "user_ip": IP,
        "user_ip_country": "United Kingdom",
        "user_agent": UA,
        "topic": "session",
        "action": "login",
        "result": "failed",
        "data": '{"reason":"Invalid Email or Password"}',
        "created_at": "2023-11-14T22:16:20Z",
        "user": user_json(log["bob"], referral_uid=log["alice"].uid),
    }
    assert entries[0]["user"] == user_json(log["alice"])


async def test_user_activities_written_by_the_identity_api_are_listed(
    api: Any, superadmin: Any, make_user: Any
) -> None:
    body = {"email": "carol@example.com", "password": "Str0ng-Passphrase-42"}
    assert (await api.post("/api/v2/barong/identity/users", json=body, headers=browser())).status == 201
    wrong = {**body, "password": "Wrong-Passphrase-42"}
    assert (await api.post("/api/v2/barong/identity/sessions", json=wrong, headers=browser())).status == 401
    entries = await listing(api, superadmin, email="carol@example.com")
    assert summary(entries) == [
        ("carol@example.com", "session", "login", "failed"),
        ("carol@example.com", "account", "signup", "succeed"),
    ]
    assert orjson.loads(entries[0]["data"]) == {"reason": "Invalid Email or Password"}
    # The superadmin's own sign-in is a user activity too.
    assert summary(await listing(api, superadmin, uid=superadmin.user.uid)) == [
        (superadmin.user.email, "session", "login", "succeed")
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"topic": "session"}, [("bob", "login"), ("bob", "login"), ("alice", "login")]),
        ({"action": "signup"}, [("bob", "signup"), ("alice", "signup")]),
        ({"topic": "account", "action": "login"}, []),
        ({"uid": "alice"}, [("alice", "password change"), ("alice", "login"), ("alice", "signup")]),
        ({"email": "BOB@Example.com"}, [("bob", "login"), ("bob", "login"), ("bob", "signup")]),
        ({"email": "bob@example.com", "topic": "account"}, [("bob", "signup")]),
        ({"from": T0 + 180}, [("alice", "password change"), ("bob", "login"), ("bob", "login")]),
        ({"from": T0 + 181, "to": T0 + 240}, [("bob", "login")]),
        ({"to": T0 + 60}, [("alice", "login"), ("alice", "signup")]),
        ({"from": T0 + 301}, []),
        ({"uid": "ID0000000000"}, []),
        ({"topic": "", "action": " ", "uid": ""}, "all"),  # blank is no filter
    ],
)
async def test_user_activity_filters(
    api: Any, superadmin: Any, log: Any, params: dict[str, Any], expected: Any
) -> None:
    query = {key: str(value) for key, value in params.items()}
    if query.get("uid") in ("alice", "bob"):
        query["uid"] = log[query["uid"]].uid
    query.setdefault("to", str(T0 + 10_000))  # leave out the superadmin's sign-in
    entries = await listing(api, superadmin, **query)
    found = [(e["user"]["email"].split("@")[0], e["action"]) for e in entries]
    if expected == "all":
        assert len(found) == 6
    else:
        assert found == expected


async def test_user_activity_filters_accept_a_json_body(api: Any, superadmin: Any, log: Any) -> None:
    response = await api.get(
        f"{ADMIN}/activities",
        data=orjson.dumps({"topic": "account", "from": T0, "to": T0 + 120}),
        headers={**superadmin.headers, "Content-Type": "application/json"},
    )
    assert summary(await response.json()) == [
        ("bob@example.com", "account", "signup", "succeed"),
        ("alice@example.com", "account", "signup", "succeed"),
    ]


async def test_activities_are_paginated(api: Any, superadmin: Any, log: Any) -> None:
    response = await api.get(
        f"{ADMIN_ALIAS}/activities",
        params={"to": T0 + 10_000, "page": 2, "limit": 4},
        headers=superadmin.headers,
    )
    assert response.status == 200
    assert (response.headers["Total"], response.headers["Page"], response.headers["Per-Page"]) == (
        "6",
        "2",
        "4",
    )
    assert 'rel="prev"' in response.headers["Link"] and 'rel="next"' not in response.headers["Link"]
    assert summary(await response.json()) == [
        ("alice@example.com", "session", "login", "succeed"),
        ("alice@example.com", "account", "signup", "succeed"),
    ]
    beyond = await api.get(f"{ADMIN}/activities", params={"page": 9, "limit": 4}, headers=superadmin.headers)
    assert await beyond.json() == [] and beyond.headers["Total"] == "7"


@pytest.mark.parametrize("path", ["/activities", "/activities/admin"])
async def test_every_bad_parameter_is_reported_at_once(api: Any, superadmin: Any, path: str) -> None:
    response = await api.get(
        f"{ADMIN}{path}",
        params={"from": "yesterday", "to": "1.5", "page": "0", "limit": "101"},
        headers=superadmin.headers,
    )
    assert await errors_of(response, 422) == [
        "admin.activity.non_integer_from",
        "admin.activity.non_integer_to",
        "non_positive_page",
        "invalid_limit",
    ]
    body = {
        "topic": ["a"],
        "action": {"b": 1},
        "uid": True,
        "email": None,
        "from": 10**15,
        "to": "-1e3",
        "page": "one",
        "limit": "x",
    }
    response = await api.get(
        f"{ADMIN}{path}",
        data=orjson.dumps(body),
        headers={**superadmin.headers, "Content-Type": "application/json"},
    )
    assert await errors_of(response, 422) == [
        "admin.activity.non_string_topic",
        "admin.activity.non_string_action",
        "admin.activity.non_string_uid",
        "admin.activity.invalid_from",
        "admin.activity.non_integer_to",
        "non_integer_page",
        "non_integer_limit",
    ]


async def test_the_activity_log_needs_a_bearer_token_and_the_read_activity_ability(
    api: Any, sign_in: Any, open_table: Any
) -> None:
    for path in ("/activities", "/activities/admin"):
        assert await errors_of(await api.get(f"{ADMIN}{path}", headers=browser()), 401) == [
            "jwt.decode_and_verify"
        ]
        assert await errors_of(await api.get(f"{ADMIN}{path}", headers=bearer("Bearer x.y.z")), 401) == [
            "jwt.decode_and_verify"
        ]
    compliance = await sign_in("compliance")  # manages users, may not read activities
    support = await sign_in("support")
    await open_table(api)  # the shipped table refuses them the admin activities first
    for path in ("/activities", "/activities/admin"):
        response = await api.get(f"{ADMIN}{path}", params={"page": "zero"}, headers=compliance.headers)
        assert await errors_of(response, 401) == ["admin.ability.not_permitted"]  # before the parameters
        assert (await api.get(f"{ADMIN_ALIAS}{path}", headers=support.headers)).status == 200


# --- /activities/admin ---------------------------------------------------------------------------------


async def test_admin_activities_show_the_admin_and_the_target(api: Any, superadmin: Any, log: Any) -> None:
    entries = await listing(api, superadmin, "/activities/admin")
    assert [(e["topic"], e["action"]) for e in entries] == [
        ("restrictions", "delete"),
        ("permissions", "create"),
        ("users", "update"),
    ]
    deleted, created, updated = entries
    assert updated == {
        "id": updated["id"],
        "user_ip": IP,
        "user_ip_country": "United Kingdom",
        "user_agent": UA,
        "topic": "users",
        "action": "update",
        "result": "succeed",
        "data": '{"state":"banned"}',
        "created_at": iso(at(400)),
        "target_uid": log["bob"].uid,
        "admin": user_json(log["boss"]),
        "target": user_json(log["bob"], referral_uid=log["alice"].uid),
    }
    assert (created["admin"], created["target"], created["target_uid"]) == (None, None, None)  # the CLI
    assert orjson.loads(created["data"]) == {"role": "member", "via": "cli"}
    assert created["user_agent"] == "authz-cli"
    assert (deleted["admin"], deleted["target"]) == (user_json(log["boss"]), None)
    # User activities are not admin activities, and the other way round.
    assert all(e["topic"] in ("account", "session", "password") for e in await listing(api, superadmin))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"target_uid": "bob"}, ["users"]),
        ({"target_uid": "alice"}, []),
        ({"uid": "boss"}, ["restrictions", "users"]),
        ({"email": "boss@example.com", "action": "delete"}, ["restrictions"]),
        ({"topic": "permissions"}, ["permissions"]),
        ({"from": T0 + 500}, ["restrictions", "permissions"]),
        ({"to": T0 + 499}, ["users"]),
        ({"range": "created", "from": T0 + 401, "to": T0 + 599}, ["permissions"]),
        ({"target_uid": ""}, ["restrictions", "permissions", "users"]),
    ],
)
async def test_admin_activity_filters(
    api: Any, superadmin: Any, log: Any, params: dict[str, Any], expected: Any
) -> None:
    query = {
        key: log[value].uid if key in ("uid", "target_uid") and value in log else str(value)
        for key, value in params.items()
    }
    assert [e["topic"] for e in await listing(api, superadmin, "/activities/admin", **query)] == expected


async def test_admin_activity_range_is_created_only(api: Any, superadmin: Any) -> None:
    response = await api.get(
        f"{ADMIN}/activities/admin",
        params={"range": "updated", "target_uid": "x"},
        headers=superadmin.headers,
    )
    assert await errors_of(response, 422) == ["admin.activity.invalid_range"]
    body = {"target_uid": 5, "email": ["x"]}
    response = await api.get(
        f"{ADMIN}/activities/admin",
        data=orjson.dumps(body),
        headers={**superadmin.headers, "Content-Type": "application/json"},
    )
    assert await errors_of(response, 422) == ["admin.activity.non_string_email"]  # a number is its text
    # The user listing has no target or range: they are ignored there.
    assert (
        await api.get(f"{ADMIN}/activities", params={"range": "updated"}, headers=superadmin.headers)
    ).status == 200


async def test_denials_recorded_by_the_decision_endpoint_are_listed(
    api: Any, sign_in: Any, make_user: Any, services: Any
) -> None:
    """The decision endpoint records an admin activity for every denial; it shows up here."""
    account = await make_user(role="admin")
    cookie, _ = await login(api, account)
    response = await api.get("/api/v2/auth/api/v2/barong/admin/activities/admin", headers=with_cookie(cookie))
    assert response.status == 401  # admins may not read admin activities (policies/permissions.yml: DROP)
    await admin_activities(services, 1)
    superadmin = await sign_in("superadmin")
    entries = await listing(api, superadmin, "/activities/admin", email=account.user.email)
    assert [(e["topic"], e["action"], e["result"]) for e in entries] == [("activities", "read", "denied")]
    assert entries[0]["admin"] == user_json(account.user)
