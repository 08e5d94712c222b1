"""Admin API: ``/admin/restrictions`` and ``/admin/restrictions/whitelink`` (barong-behavior.md §7.2) over
the real app, on SQLite and PostgreSQL.

Every change must be recorded as an admin activity in the same transaction and applied by the decision
endpoint at once; a blocklogin restriction revokes the sessions opened from the addresses it blocks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import update

from identity.db import restrictions
from identity.models import Restriction
from identity.whitelinks import RedisWhitelinkTokens
from tests.admin.conftest import ADMIN, ADMIN_ALIAS
from tests.authz.helpers import decide, eventually
from tests.resource.helpers import Caller, errors_of

# Every route answers under both prefixes: the tests of each route take one or the other.
MAIN = pytest.mark.parametrize("prefix", [ADMIN])
ALIAS = pytest.mark.parametrize("prefix", [ADMIN_ALIAS])
BLACKLISTED = "203.0.113.7"
PUBLIC = "api/v2/barong/identity/configs"  # a pass rule: only a restriction can deny it
FIELDS = {"id", "category", "scope", "value", "code", "state", "created_at", "updated_at"}


def url(prefix: str = ADMIN, tail: str = "") -> str:
    return f"{prefix}/restrictions{tail}"


async def stored(services: Any) -> list[Restriction]:
    return await services.restrictions.list_all()  # type: ignore[no-any-return]


async def restriction_activities(services: Any) -> list[tuple[str, int | None, dict[str, Any]]]:
    """(action, admin's user id, data) of the admin activities on topic ``restrictions``, oldest first."""
    found = await services.activities.list(category="admin")
    return [(a.action, a.user_id, orjson.loads(a.data)) for a in found if a.topic == "restrictions"]


def record(r: Restriction) -> dict[str, Any]:
    return {
        "id": r.id,
        "category": r.category,
        "scope": r.scope,
        "value": r.value,
        "code": r.code,
        "state": r.state,
    }


async def add(api: Any, caller: Caller, **body: Any) -> dict[str, Any]:
    response = await api.post(url(), json=body, headers=caller.headers)
    assert response.status == 201, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def from_blacklisted(api: Any) -> tuple[int, Any]:
    status, body, _ = await decide(api, "GET", PUBLIC, {"X-Forwarded-For": BLACKLISTED, "User-Agent": "UA"})
    return status, body


# --- POST -------------------------------------------------------------------------------------------


@MAIN
async def test_create_answers_201_with_the_stored_restriction_and_records_it(
    api: Any, superadmin: Caller, services: Any, prefix: str
) -> None:
    body = {"scope": "ip", "value": BLACKLISTED, "category": "blacklist"}
    response = await api.post(url(prefix), json=body, headers=superadmin.headers)
    assert response.status == 201, await response.text()
    entity = await response.json()
    assert set(entity) == FIELDS
    [created] = await stored(services)
    assert entity["id"] == created.id and entity["created_at"].endswith("Z")
    assert (entity["category"], entity["scope"], entity["value"], entity["code"], entity["state"]) == (
        "blacklist",
        "ip",
        BLACKLISTED,
        401,  # the ip scope's default
        "enabled",
    )
    [(action, admin_id, data)] = await restriction_activities(services)
    assert (action, admin_id, data["after"]) == ("create", superadmin.user.id, record(created))


#: (body, (category, scope, value, code, state) stored).
NORMALISED = [
    (
        {"scope": "all", "value": "all", "category": "maintenance"},
        ("maintenance", "all", "all", 471, "enabled"),
    ),
    (
        {
            "scope": "IP_SUBNET",
            "value": "10.1.2.3/16",
            "category": "Blacklist",
            "state": "disabled",
            "code": "451",
        },
        ("blacklist", "ip_subnet", "10.1.0.0/16", 451, "disabled"),
    ),
    (
        {"scope": "country", "value": "JP", "category": "whitelist", "code": 499},
        ("whitelist", "country", "JP", 423, "enabled"),  # a whitelist always has its scope's code
    ),
    (
        {"scope": "ip", "value": "2001:DB8::1", "category": "blocklogin"},
        ("blocklogin", "ip", "2001:db8::1", 401, "enabled"),
    ),
]


async def test_create_normalises_and_assigns_codes(api: Any, superadmin: Caller) -> None:
    for body, expected in NORMALISED:
        entity = await add(api, superadmin, **body)
        assert (
            entity["category"],
            entity["scope"],
            entity["value"],
            entity["code"],
            entity["state"],
        ) == expected


async def test_create_takes_a_form_body(api: Any, superadmin: Caller) -> None:
    form = {"scope": "continent", "value": "Europe", "category": "blacklist", "code": "423"}
    response = await api.post(url(), data=form, headers=superadmin.headers)
    assert response.status == 201, await response.text()
    assert (await response.json())["value"] == "Europe"


#: (body, error keys) of refused creations.
BAD_CREATES = [
    (
        {},
        [
            "admin.restriction.missing_scope",
            "admin.restriction.missing_value",
            "admin.restriction.missing_category",
        ],
    ),
    (
        {"scope": "", "value": " ", "category": "blacklist", "state": ""},
        [
            "admin.restriction.empty_scope",
            "admin.restriction.empty_value",
            "admin.restriction.empty_state",
        ],
    ),
    (
        {"scope": "city", "value": "Paris", "category": "greylist", "state": "on", "code": "x"},
        [
            "admin.restriction.invalid_code",
            "admin.restriction.invalid_scope",
            "admin.restriction.invalid_category",
            "admin.restriction.invalid_state",
        ],
    ),
    ({"scope": "ip", "value": "1.2.3.999", "category": "blacklist"}, ["value.invalid"]),
    ({"scope": "ip_subnet", "value": "10.0.0.0/40", "category": "blacklist"}, ["value.invalid"]),
    ({"scope": "country", "value": "x" * 65, "category": "blacklist"}, ["value.too_long"]),
    ({"scope": "ip", "value": "1.2.3.4", "category": "blacklist", "code": 99}, ["code.invalid"]),
]


async def test_create_refuses_bad_parameters_naming_each(api: Any, superadmin: Caller, services: Any) -> None:
    for body, keys in BAD_CREATES:
        response = await api.post(url(), json=body, headers=superadmin.headers)
        assert await errors_of(response, 422) == keys, body
    assert await stored(services) == []
    assert await restriction_activities(services) == []


async def test_create_refuses_a_duplicate(api: Any, superadmin: Caller, services: Any) -> None:
    await add(api, superadmin, scope="ip_subnet", value="10.1.2.3/16", category="blacklist")
    response = await api.post(
        url(),
        json={"scope": "ip_subnet", "value": "10.1.0.0/16", "category": "blacklist"},
        headers=superadmin.headers,
    )
    assert await errors_of(response, 422) == ["value.taken"]
    assert len(await stored(services)) == 1
    assert [action for action, _, _ in await restriction_activities(services)] == ["create"]


# --- GET --------------------------------------------------------------------------------------------


async def three(api: Any, caller: Caller) -> list[dict[str, Any]]:
    return [
        await add(api, caller, scope="ip", value="192.0.2.1", category="blacklist"),
        await add(api, caller, scope="country", value="FR", category="blacklist"),
        await add(api, caller, scope="ip", value="192.0.2.2", category="whitelist"),
    ]


@ALIAS
async def test_list_filters_by_scope_and_category_and_paginates(
    api: Any, superadmin: Caller, prefix: str
) -> None:
    made = await three(api, superadmin)
    everything = await api.get(url(prefix), headers=superadmin.headers)
    assert [r["id"] for r in await everything.json()] == [r["id"] for r in made]
    assert (everything.headers["Total"], everything.headers["Page"], everything.headers["Per-Page"]) == (
        "3",
        "1",
        "100",
    )

    ips = await api.get(url(prefix), params={"scope": "ip"}, headers=superadmin.headers)
    assert [r["value"] for r in await ips.json()] == ["192.0.2.1", "192.0.2.2"]
    blacklisted_ips = await api.get(
        url(prefix), params={"scope": "ip", "category": "blacklist"}, headers=superadmin.headers
    )
    assert [r["value"] for r in await blacklisted_ips.json()] == ["192.0.2.1"]

    second = await api.get(
        url(prefix), params={"limit": "2", "page": "2", "scope": ""}, headers=superadmin.headers
    )
    assert [r["id"] for r in await second.json()] == [made[2]["id"]]
    assert (second.headers["Total"], second.headers["Page"], second.headers["Per-Page"]) == ("3", "2", "2")
    assert 'rel="prev"' in second.headers["Link"] and 'rel="next"' not in second.headers["Link"]


async def test_list_filters_by_creation_or_update_time(api: Any, superadmin: Caller, services: Any) -> None:
    made = await three(api, superadmin)
    old = datetime(2020, 1, 1, tzinfo=UTC)
    async with services.engine.begin() as conn:
        await conn.execute(
            update(restrictions).where(restrictions.c.id == made[0]["id"]).values(created_at=old)
        )
        await conn.execute(
            update(restrictions).where(restrictions.c.id == made[1]["id"]).values(updated_at=old)
        )
    cut = int((old + timedelta(days=1)).timestamp())

    async def ids(**params: Any) -> list[int]:
        response = await api.get(url(), params=params, headers=superadmin.headers)
        assert response.status == 200, await response.text()
        return [r["id"] for r in await response.json()]

    assert await ids(to=cut) == [made[0]["id"]]
    assert await ids(**{"from": cut}) == [made[1]["id"], made[2]["id"]]
    assert await ids(range="updated", to=cut) == [made[1]["id"]]
    assert await ids(range="updated", **{"from": str(cut), "to": str(cut + 10**9)}) == [
        made[0]["id"],
        made[2]["id"],
    ]
    assert await ids(**{"from": int(old.timestamp()), "to": int(old.timestamp())}) == [
        made[0]["id"]
    ]  # inclusive


async def test_list_refuses_bad_filters_at_once(api: Any, superadmin: Caller) -> None:
    params = {
        "scope": "city",
        "category": "greylist",
        "range": "deleted",
        "from": "yesterday",
        "to": "9" * 30,
        "page": "0",
    }
    response = await api.get(url(), params=params, headers=superadmin.headers)
    assert await errors_of(response, 422) == [
        "admin.restriction.invalid_scope",
        "admin.restriction.invalid_category",
        "admin.restriction.invalid_range",
        "admin.restriction.invalid_from",
        "admin.restriction.invalid_to",
        "non_positive_page",
    ]


# --- PUT --------------------------------------------------------------------------------------------


@MAIN
async def test_update_changes_the_given_fields_and_records_before_and_after(
    api: Any, superadmin: Caller, services: Any, prefix: str
) -> None:
    made = await add(api, superadmin, scope="ip", value="192.0.2.1", category="blacklist")
    [before] = await stored(services)
    body = {"id": str(made["id"]), "value": "192.0.2.9", "code": 451, "state": "disabled"}
    response = await api.put(url(prefix), json=body, headers=superadmin.headers)
    assert response.status == 200, await response.text()
    entity = await response.json()
    [after] = await stored(services)
    assert (entity["id"], entity["value"], entity["code"], entity["state"], entity["scope"]) == (
        made["id"],
        "192.0.2.9",
        451,
        "disabled",
        "ip",
    )
    assert (after.value, after.code, after.state) == ("192.0.2.9", 451, "disabled")
    assert after.created_at == before.created_at
    actions = await restriction_activities(services)
    assert [a for a, _, _ in actions] == ["create", "update"]
    assert actions[1][1] == superadmin.user.id
    assert actions[1][2] == {"before": record(before), "after": record(after)}


async def test_update_validates_the_merged_restriction(api: Any, superadmin: Caller, services: Any) -> None:
    made = await add(api, superadmin, scope="country", value="FR", category="blacklist")
    other = await add(api, superadmin, scope="country", value="JP", category="blacklist")
    before = await stored(services)
    cases = [
        ({"id": made["id"], "scope": "ip"}, 422, ["value.invalid"]),  # "FR" is no address
        ({"id": made["id"], "value": "JP"}, 422, ["value.taken"]),
        (
            {"id": other["id"], "scope": "town", "state": "off"},
            422,
            ["admin.restriction.invalid_scope", "admin.restriction.invalid_state"],
        ),
        ({"id": made["id"], "value": ""}, 422, ["admin.restriction.empty_value"]),
        ({"scope": "ip"}, 422, ["admin.restriction.missing_id"]),
        ({"id": "x", "code": "y"}, 422, ["admin.restriction.invalid_id", "admin.restriction.invalid_code"]),
        ({"id": 999999, "state": "enabled"}, 404, ["admin.restriction.doesnt_exist"]),
    ]
    for body, status, keys in cases:
        response = await api.put(url(), json=body, headers=superadmin.headers)
        assert await errors_of(response, status) == keys, body
    assert await stored(services) == before
    assert len(await restriction_activities(services)) == 2  # the two creations


async def test_update_to_whitelist_takes_the_scope_default_code(api: Any, superadmin: Caller) -> None:
    made = await add(api, superadmin, scope="ip", value="192.0.2.1", category="blacklist", code=451)
    response = await api.put(
        url(), data={"id": str(made["id"]), "category": "whitelist"}, headers=superadmin.headers
    )
    assert response.status == 200
    assert ((await response.json())["category"], (await response.json())["code"]) == ("whitelist", 401)


# --- DELETE -----------------------------------------------------------------------------------------


@ALIAS
async def test_delete_answers_204_and_records_what_was_deleted(
    api: Any, superadmin: Caller, services: Any, prefix: str
) -> None:
    made = await add(api, superadmin, scope="ip", value="192.0.2.1", category="blacklist")
    [target] = await stored(services)
    response = await api.delete(url(prefix), params={"id": str(made["id"])}, headers=superadmin.headers)
    assert response.status == 204 and await response.read() == b""
    assert await stored(services) == []
    action, admin_id, data = (await restriction_activities(services))[-1]
    assert (action, admin_id, data) == ("delete", superadmin.user.id, {"before": record(target)})
    again = await api.delete(url(prefix), params={"id": str(made["id"])}, headers=superadmin.headers)
    assert await errors_of(again, 404) == ["admin.restriction.doesnt_exist"]
    missing = await api.delete(url(prefix), headers=superadmin.headers)
    assert await errors_of(missing, 422) == ["admin.restriction.missing_id"]


# --- the decision endpoint ----------------------------------------------------------------------------


async def test_a_blacklist_added_through_the_api_denies_at_once_and_removing_it_lifts_the_denial(
    api: Any, superadmin: Caller
) -> None:
    assert await from_blacklisted(api) == (200, None)
    made = await add(api, superadmin, scope="ip", value=BLACKLISTED, category="blacklist", code=451)
    assert await eventually(lambda: from_blacklisted(api), lambda result: result[0] == 451) == (
        451,
        {"errors": ["authz.restrict.blacklist"]},
    )
    disabled = await api.put(url(), json={"id": made["id"], "state": "disabled"}, headers=superadmin.headers)
    assert disabled.status == 200
    assert await eventually(lambda: from_blacklisted(api), lambda result: result[0] == 200) == (200, None)
    enabled = await api.put(url(), json={"id": made["id"], "state": "enabled"}, headers=superadmin.headers)
    assert enabled.status == 200
    assert (await eventually(lambda: from_blacklisted(api), lambda result: result[0] == 451))[0] == 451
    deleted = await api.delete(url(), params={"id": made["id"]}, headers=superadmin.headers)
    assert deleted.status == 204
    assert await eventually(lambda: from_blacklisted(api), lambda result: result[0] == 200) == (200, None)


async def test_a_blocklogin_restriction_revokes_the_sessions_it_blocks(
    api: Any, superadmin: Caller, services: Any
) -> None:
    user = await services.users.create(email="blocked@example.com", password_digest="x", state="active")
    _, blocked = await services.sessions.create(user.uid, "10.1.2.3", "UA")
    _, kept = await services.sessions.create(user.uid, "192.0.2.7", "UA")
    _, later = await services.sessions.create(user.uid, "10.2.0.1", "UA")

    made = await add(api, superadmin, scope="ip_subnet", value="10.1.0.0/16", category="blocklogin")
    assert await services.sessions.get(blocked.hash) is None
    assert await services.sessions.get(kept.hash) is not None
    assert await services.sessions.get(later.hash) is not None

    # Switched off and on again over another subnet: the sessions from the new one go.
    off = await api.put(url(), json={"id": made["id"], "state": "disabled"}, headers=superadmin.headers)
    assert off.status == 200
    assert await services.sessions.get(later.hash) is not None
    on = await api.put(
        url(), json={"id": made["id"], "state": "enabled", "value": "10.2.0.0/16"}, headers=superadmin.headers
    )
    assert on.status == 200
    assert await services.sessions.get(later.hash) is None
    assert await services.sessions.get(kept.hash) is not None
    # Deleting one revokes nothing.
    assert (await api.delete(url(), params={"id": made["id"]}, headers=superadmin.headers)).status == 204
    assert await services.sessions.get(kept.hash) is not None


async def test_a_disabled_blocklogin_restriction_revokes_nothing(
    api: Any, superadmin: Caller, services: Any
) -> None:
    user = await services.users.create(email="kept@example.com", password_digest="x", state="active")
    _, session = await services.sessions.create(user.uid, "10.1.2.3", "UA")
    await add(api, superadmin, scope="all", value="all", category="blocklogin", state="disabled")
    assert await services.sessions.get(session.hash) is not None


# --- whitelink ----------------------------------------------------------------------------------------


@ALIAS
async def test_whitelink_answers_a_token_living_for_its_range(
    api: Any, superadmin: Caller, services: Any, settings: Any, prefix: str
) -> None:
    tokens = RedisWhitelinkTokens(services.redis, settings.redis_namespace)
    response = await api.post(
        url(prefix, "/whitelink"), json={"expire_time": 2, "range": "hour"}, headers=superadmin.headers
    )
    assert response.status == 201, await response.text()
    token = (await response.json())["whitelink_token"]
    assert len(token) == 64 and await tokens.active(token)
    assert 7000 < await services.redis.ttl(f"{settings.redis_namespace}:whitelink:{token}") <= 7200

    default = await api.post(url(prefix, "/whitelink"), headers=superadmin.headers)
    assert default.status == 201
    default_token = (await default.json())["whitelink_token"]
    assert (
        86_000 < await services.redis.ttl(f"{settings.redis_namespace}:whitelink:{default_token}") <= 86_400
    )
    recorded = await restriction_activities(services)
    assert recorded == [
        ("create", superadmin.user.id, {"whitelink": {"expire_time": 2, "range": "hour"}}),
        ("create", superadmin.user.id, {"whitelink": {"expire_time": 1, "range": "day"}}),
    ]
    assert token not in str(recorded)


#: (body, error keys) of refused whitelinks.
BAD_WHITELINKS = [
    ({"expire_time": 31}, ["admin.restriction.invalid_expire"]),
    ({"expire_time": "0"}, ["admin.restriction.invalid_expire"]),
    (
        {"expire_time": "soon", "range": "week"},
        ["admin.restriction.invalid_expire", "admin.restriction.invalid_range"],
    ),
    ({"range": ["day"]}, ["admin.restriction.invalid_range"]),
]


async def test_whitelink_refuses_bad_lifetimes(api: Any, superadmin: Caller, services: Any) -> None:
    for body, keys in BAD_WHITELINKS:
        response = await api.post(url(tail="/whitelink"), json=body, headers=superadmin.headers)
        assert await errors_of(response, 422) == keys, body
    assert await restriction_activities(services) == []


# --- abilities ----------------------------------------------------------------------------------------


async def test_an_admin_manages_restrictions(api: Any, sign_in: Any) -> None:
    admin = await sign_in("admin")
    made = await add(api, admin, scope="ip", value="192.0.2.1", category="blacklist")
    assert (await api.get(url(), headers=admin.headers)).status == 200
    assert (await api.put(url(), json={"id": made["id"], "code": 403}, headers=admin.headers)).status == 200
    assert (await api.post(url(tail="/whitelink"), headers=admin.headers)).status == 201
    assert (await api.delete(url(), params={"id": made["id"]}, headers=admin.headers)).status == 204


async def test_roles_without_the_ability_are_refused(
    api: Any, sign_in: Any, services: Any, open_table: Any
) -> None:
    accountant = await sign_in("accountant")
    member = await sign_in("member")
    await open_table(api)  # the table would refuse them first (authz.invalid_permission)
    for caller in (accountant, member):
        refused = [
            await api.get(url(), params={"scope": "city"}, headers=caller.headers),
            await api.post(
                url(),
                json={"scope": "ip", "value": "1.2.3.4", "category": "blacklist"},
                headers=caller.headers,
            ),
            await api.put(url(), json={"id": 1, "state": "disabled"}, headers=caller.headers),
            await api.delete(url(), params={"id": 1}, headers=caller.headers),
            await api.post(url(tail="/whitelink"), headers=caller.headers),
        ]
        for response in refused:
            assert await errors_of(response, 401) == ["admin.ability.not_permitted"]
    assert await stored(services) == []
