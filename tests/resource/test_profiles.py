"""``/resource/profiles``: the user's KYC profile over the real app (seed 2.6; drafted → submitted, and
verified or rejected by an admin)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from identity.db import profiles
from identity.profiles import SqlProfileRepository
from tests.resource.helpers import RESOURCE, RESOURCE_ALIAS, bearer, errors_of, jwt_for

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
PROFILES = f"{RESOURCE}/profiles"
ADA = {
    "first_name": " Ada  Augusta ",
    "last_name": "Lovelace",
    "dob": "1815-12-10",
    "address": "12 St James's Square",
    "postcode": "SW1Y 4JH",
    "city": "London",
    "country": "gb",
    "metadata": '{"nationality": "british"}',
}


async def set_state(services: Any, user_id: int, state: str) -> None:
    """What an admin's review does (admin API: next issue)."""
    async with services.engine.begin() as conn:
        await conn.execute(update(profiles).where(profiles.c.user_id == user_id).values(state=state))


async def test_a_profile_is_drafted_then_edited_then_submitted(api: Any, member: Any, services: Any) -> None:
    account, headers = member
    none_yet = await api.get(f"{PROFILES}/me", headers=headers)
    assert await errors_of(none_yet, 404) == ["resource.profile.not_exist"]

    created = await api.post(PROFILES, json=ADA, headers=headers)
    assert created.status == 201, await created.text()
    body = await created.json()
    assert body == {
        "first_name": "Ada Augusta",
        "last_name": "L*******",
        "dob": "1815-**-**",
        "address": "12 St James's Square",
        "postcode": "SW1Y 4JH",
        "city": "London",
        "country": "GB",
        "state": "drafted",
        "metadata": {"nationality": "british"},
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    edited = await api.put(PROFILES, data={"city": "Marylebone", "address": ""}, headers=headers)  # a form
    assert edited.status == 200, await edited.text()
    assert ((await edited.json())["city"], (await edited.json())["address"]) == ("Marylebone", None)
    submitted = await api.put(f"{RESOURCE_ALIAS}/profiles", json={"confirm": True}, headers=headers)
    assert (await submitted.json())["state"] == "submitted"

    [shown] = await (await api.get(f"{PROFILES}/me", headers=headers)).json()
    assert (shown["state"], shown["city"], shown["last_name"]) == ("submitted", "Marylebone", "L*******")
    [stored] = await SqlProfileRepository(services.engine).for_user(account.user.id)
    assert (stored.last_name, stored.dob, stored.address) == ("Lovelace", "1815-12-10", None)


async def test_one_profile_per_user_even_under_concurrent_requests(
    api: Any, member: Any, services: Any
) -> None:
    account, headers = member
    answers = await asyncio.gather(*(api.post(PROFILES, json=ADA, headers=headers) for _ in range(4)))
    assert sorted(answer.status for answer in answers) == [201, 409, 409, 409]
    refused = next(answer for answer in answers if answer.status == 409)
    assert await refused.json() == {"errors": ["resource.profile.exist"]}
    assert len(await SqlProfileRepository(services.engine).for_user(account.user.id)) == 1


async def test_a_confirmed_profile_is_submitted_and_no_longer_editable(
    api: Any, member: Any, services: Any
) -> None:
    account, headers = member
    created = await api.post(PROFILES, json={**ADA, "confirm": "true"}, headers=headers)
    assert (await created.json())["state"] == "submitted"
    not_editable = ["resource.profile.doesnt_exist_or_not_editable"]
    assert (
        await errors_of(await api.put(PROFILES, json={"city": "Paris"}, headers=headers), 404) == not_editable
    )
    await set_state(services, account.user.id, "verified")
    assert (
        await errors_of(await api.put(PROFILES, json={"city": "Paris"}, headers=headers), 404) == not_editable
    )
    await set_state(services, account.user.id, "rejected")
    fixed = await api.put(PROFILES, json={"city": "Paris"}, headers=headers)
    assert ((await fixed.json())["city"], (await fixed.json())["state"]) == ("Paris", "drafted")


@SQLITE_ONLY
async def test_without_a_profile_there_is_nothing_to_update(api: Any, member: Any) -> None:
    _, headers = member
    response = await api.put(PROFILES, json={"city": "Paris"}, headers=headers)
    assert await errors_of(response, 404) == ["resource.profile.doesnt_exist_or_not_editable"]


@SQLITE_ONLY
async def test_masking_off_shows_the_full_last_name_and_birth_date(make_client: Any, make_user: Any) -> None:
    api = await make_client(api_data_masking=False)
    account = await make_user()
    headers = bearer(await jwt_for(api, account))
    body = await (await api.post(PROFILES, json=ADA, headers=headers)).json()
    assert (body["last_name"], body["dob"]) == ("Lovelace", "1815-12-10")


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("body", "keys"),
    [
        ({"dob": "10/12/1815"}, ["resource.profile.invalid_dob"]),
        ({"dob": "1815-02-30"}, ["resource.profile.invalid_dob"]),
        ({"dob": "tomorrow"}, ["resource.profile.invalid_dob"]),
        ({"country": "Narnia", "metadata": "[1]"}, ["country.invalid", "metadata.invalid_format"]),
        ({"country": "XX", "metadata": "{"}, ["country.invalid", "metadata.invalid_format"]),
        ({"first_name": "x" * 256, "postcode": "1" * 33}, ["first_name.too_long", "postcode.too_long"]),
        (
            {"last_name": "x" * 256, "city": "y" * 256, "address": "z" * 256},
            ["last_name.too_long", "address.too_long", "city.too_long"],
        ),
        ({"metadata": '{"a": "' + "x" * 5200 + '"}'}, ["metadata.too_long"]),
        (
            {"first_name": 7, "confirm": "perhaps"},
            ["resource.profile.invalid_first_name", "resource.profile.invalid_confirm"],
        ),
    ],
)
async def test_invalid_fields_are_refused_with_every_reason(
    api: Any, member: Any, body: dict[str, Any], keys: list[str]
) -> None:
    _, headers = member
    assert await errors_of(await api.post(PROFILES, json=body, headers=headers), 422) == keys
    assert await errors_of(await api.get(f"{PROFILES}/me", headers=headers), 404) == [
        "resource.profile.not_exist"
    ]


@SQLITE_ONLY
async def test_a_birth_date_must_lie_in_the_past(api: Any, member: Any, clock: Any) -> None:
    _, headers = member
    today = datetime.fromtimestamp(clock.now, UTC).date()
    for dob in (today, today + timedelta(days=400)):
        response = await api.post(PROFILES, json={"dob": dob.isoformat()}, headers=headers)
        assert await errors_of(response, 422) == ["dob.invalid"]
    yesterday = await api.post(
        PROFILES, json={"dob": (today - timedelta(days=1)).isoformat()}, headers=headers
    )
    assert yesterday.status == 201
    assert await errors_of(
        await api.put(PROFILES, json={"dob": today.isoformat()}, headers=headers), 422
    ) == ["dob.invalid"]
