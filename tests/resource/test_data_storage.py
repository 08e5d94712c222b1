"""``/resource/data_storage``: titled JSON data of a user over the real app (seed 2.6)."""

from __future__ import annotations

from typing import Any

import pytest

from identity.data_storage import SqlDataStorageRepository
from tests.resource.helpers import ME, RESOURCE, RESOURCE_ALIAS, bearer, errors_of, jwt_for

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
STORAGE = f"{RESOURCE}/data_storage"


async def test_data_is_stored_once_per_title(api: Any, member: Any, make_user: Any, services: Any) -> None:
    account, headers = member
    created = await api.post(STORAGE, json={"title": " bank ", "data": '{"iban": "GB00"}'}, headers=headers)
    assert created.status == 201, await created.text()
    body = await created.json()
    assert (body["title"], body["data"]) == ("bank", '{"iban": "GB00"}')
    assert body["created_at"] and body["updated_at"]
    as_object = await api.post(
        f"{RESOURCE_ALIAS}/data_storage", json={"title": "tax", "data": {"id": 7}}, headers=headers
    )
    assert (await as_object.json())["data"] == '{"id":7}'
    again = await api.post(STORAGE, data={"title": "bank", "data": "{}"}, headers=headers)  # a form
    assert await errors_of(again, 422) == ["title.taken"]

    other = await make_user()
    other_headers = bearer(await jwt_for(api, other))
    assert (
        await api.post(STORAGE, json={"title": "bank", "data": "{}"}, headers=other_headers)
    ).status == 201

    stored = await SqlDataStorageRepository(services.engine).for_user(account.user.id)
    assert [(s.title, s.data) for s in stored] == [("bank", '{"iban": "GB00"}'), ("tax", '{"id":7}')]
    me = await (await api.get(ME, headers=headers)).json()
    assert [s["title"] for s in me["data_storages"]] == ["bank", "tax"]


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("body", "keys"),
    [
        ({}, ["resource.data_storage.missing_title", "resource.data_storage.missing_data"]),
        (
            {"title": " ", "data": ""},
            ["resource.data_storage.empty_title", "resource.data_storage.empty_data"],
        ),
        ({"title": "x" * 65, "data": "not json"}, ["title.too_long", "data.invalid_format"]),
        ({"title": "list", "data": "[1, 2]"}, ["data.invalid_format"]),
        ({"title": "big", "data": '{"a": "' + "x" * 5200 + '"}'}, ["data.too_long"]),
        ({"title": 5, "data": "{}"}, ["resource.data_storage.invalid_title"]),
    ],
)
async def test_invalid_storage_is_refused_with_every_reason(
    api: Any, member: Any, services: Any, body: dict[str, Any], keys: list[str]
) -> None:
    account, headers = member
    assert await errors_of(await api.post(STORAGE, json=body, headers=headers), 422) == keys
    assert await SqlDataStorageRepository(services.engine).for_user(account.user.id) == []


@SQLITE_ONLY
async def test_without_a_bearer_token_nothing_is_stored(api: Any) -> None:
    response = await api.post(STORAGE, json={"title": "bank", "data": "{}"})
    assert await errors_of(response, 401) == ["jwt.decode_and_verify"]
