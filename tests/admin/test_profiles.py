"""Admin API: ``/admin/profiles`` (seed 2.4; profile states of seed 2.6) over the real app, on SQLite and
PostgreSQL: listing every profile, changing a user's profile and its state, creating one — each behind its
ability (``POST`` too, which Barong leaves unchecked)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from identity.models import Activity
from identity.profiles import ProfileChange, SqlProfileRepository
from tests.admin.conftest import ADMIN, ADMIN_ALIAS
from tests.resource.helpers import Caller, errors_of

PREFIXES = pytest.mark.parametrize("prefix", [ADMIN, ADMIN_ALIAS])


async def give_profile(services: Any, user: Any, confirm: bool = True, **values: str | None) -> None:
    await SqlProfileRepository(services.engine).create(user.id, ProfileChange(values, confirm=confirm))


async def profile_activities(services: Any) -> list[Activity]:
    found = await services.activities.list(category="admin")
    return [a for a in found if a.topic == "profiles" and a.result != "denied"]


@PREFIXES
async def test_list_shows_every_profile_unmasked_with_its_uid(
    api: Any, superadmin: Caller, make_user: Any, services: Any, prefix: str
) -> None:
    a, b, c = [(await make_user()).user for _ in range(3)]
    for user, name in ((a, "Ann"), (b, "Bob"), (c, "Cid")):
        await give_profile(services, user, first_name=name, last_name="Smith", dob="1990-05-04")
    response = await api.get(
        f"{prefix}/profiles", params={"limit": "2", "page": "2"}, headers=superadmin.headers
    )
    assert response.status == 200
    assert response.headers["Total"] == "3"
    (listed,) = await response.json()
    assert (listed["uid"], listed["first_name"], listed["last_name"], listed["dob"], listed["state"]) == (
        c.uid,
        "Cid",
        "Smith",
        "1990-05-04",
        "submitted",
    )
    bad = await api.get(f"{prefix}/profiles", params={"page": "x"}, headers=superadmin.headers)
    assert await errors_of(bad, 422) == ["non_integer_page"]


@PREFIXES
async def test_update_changes_fields_and_state_of_any_profile_and_records_the_fields_only(
    api: Any, superadmin: Caller, make_user: Any, services: Any, prefix: str
) -> None:
    member = (await make_user()).user
    await give_profile(services, member, first_name="Ann", city="Paris")
    body = {"uid": member.uid, "state": "verified", "last_name": " Smith  Jones ", "country": "fr"}
    response = await api.put(f"{prefix}/profiles", json=body, headers=superadmin.headers)
    assert response.status == 200, await response.text()
    updated = await response.json()
    assert (
        updated["state"],
        updated["first_name"],
        updated["last_name"],
        updated["country"],
        updated["city"],
    ) == (
        "verified",
        "Ann",
        "Smith Jones",
        "FR",
        "Paris",
    )
    (stored,) = await SqlProfileRepository(services.engine).for_user(member.id)
    assert (stored.state, stored.last_name) == ("verified", "Smith Jones")
    (activity,) = await profile_activities(services)
    assert (activity.action, activity.target_uid, activity.user_id) == (
        "update",
        member.uid,
        superadmin.user.id,
    )
    assert orjson.loads(activity.data) == {"fields": ["country", "last_name"], "state": "verified"}


async def test_update_refusals(
    api: Any, superadmin: Caller, sign_in: Any, make_user: Any, services: Any
) -> None:
    without = (await make_user()).user
    other_superadmin = (await make_user(role="superadmin")).user
    await give_profile(services, other_superadmin, first_name="Root")
    admin = await sign_in("admin")

    async def refused(caller: Caller, body: dict[str, Any]) -> tuple[int, list[str]]:
        response = await caller_put(api, caller, body)
        return response.status, (await response.json())["errors"]

    assert await refused(superadmin, {"state": "sleeping", "dob": "yesterday", "country": "XX"}) == (
        422,
        ["admin.profile.missing_uid", "country.invalid", "admin.profile.invalid_dob", "state.inclusion"],
    )
    assert await refused(superadmin, {"uid": "IDFFFFFFFFFF", "state": "verified"}) == (
        404,
        ["admin.user.doesnt_exist"],
    )
    assert await refused(superadmin, {"uid": without.uid, "state": "verified"}) == (
        404,
        ["admin.profiles.doesnt_exist"],
    )
    assert await refused(admin, {"uid": other_superadmin.uid, "state": "rejected"}) == (
        422,
        ["admin.profiles.superadmin_change"],
    )
    assert await profile_activities(services) == []


async def caller_put(api: Any, caller: Caller, body: dict[str, Any]) -> Any:
    return await api.put(f"{ADMIN}/profiles", json=body, headers=caller.headers)


@PREFIXES
async def test_create_makes_a_submitted_profile_once(
    api: Any, superadmin: Caller, make_user: Any, services: Any, prefix: str
) -> None:
    member = (await make_user()).user
    body = {"uid": member.uid, "first_name": "Ann", "dob": "1990-05-04", "metadata": {"source": "branch"}}
    response = await api.post(f"{prefix}/profiles", json=body, headers=superadmin.headers)
    assert response.status == 201, await response.text()
    created = await response.json()
    assert (created["first_name"], created["dob"], created["state"], created["metadata"]) == (
        "Ann",
        "1990-05-04",
        "submitted",
        {"source": "branch"},
    )
    again = await api.post(f"{prefix}/profiles", json=body, headers=superadmin.headers)
    assert await errors_of(again, 409) == ["admin.profiles.exist"]
    assert len(await SqlProfileRepository(services.engine).for_user(member.id)) == 1
    (activity,) = await profile_activities(services)
    assert orjson.loads(activity.data) == {"fields": ["dob", "first_name", "metadata"], "state": "submitted"}
    unknown = await api.post(f"{prefix}/profiles", json={"uid": "IDFFFFFFFFFF"}, headers=superadmin.headers)
    assert await errors_of(unknown, 404) == ["admin.user.doesnt_exist"]


@pytest.mark.parametrize(
    ("role", "method", "status"),
    [
        ("support", "POST", 401),  # reads profiles only: Barong would let it create one
        ("technical", "PUT", 401),
        ("member", "GET", 401),
        ("accountant", "GET", 200),
        ("compliance", "POST", 422),  # manages profiles: on to the parameters
    ],
)
async def test_abilities_guard_the_profile_endpoints(
    api: Any, sign_in: Any, open_table: Any, role: str, method: str, status: int
) -> None:
    caller = await sign_in(role)
    await open_table(api)  # the abilities alone decide (the shipped table refuses some of these first)
    response = await api.request(method, f"{ADMIN}/profiles", headers=caller.headers)
    assert response.status == status, await response.text()
    if status == 401:
        assert await errors_of(response, 401) == ["admin.ability.not_permitted"]
