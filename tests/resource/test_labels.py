"""``/resource/labels``: a user's public labels over the real app (barong-behavior.md §4.6–4.7)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from identity.account_rules import AccountRules
from identity.changes import channel
from identity.labels import SqlLabelRepository
from tests.resource.helpers import RESOURCE, RESOURCE_ALIAS, bearer, errors_of, jwt_for

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
LABELS = f"{RESOURCE}/labels"


async def test_public_labels_are_created_read_updated_and_deleted(
    api: Any, member: Any, services: Any
) -> None:
    account, headers = member
    created = await api.post(LABELS, json={"key": "  Trader-Tier ", "value": "Gold"}, headers=headers)
    assert created.status == 201, await created.text()
    body = await created.json()
    assert (body["key"], body["value"], body["scope"]) == ("trader-tier", "gold", "public")
    assert body["created_at"] and body["updated_at"]
    second = await api.post(LABELS, data={"key": "newsletter", "value": "weekly"}, headers=headers)  # a form
    assert second.status == 201

    listed = await api.get(LABELS, headers=headers)
    assert [label["key"] for label in await listed.json()] == ["trader-tier", "newsletter"]
    newest_first = await api.get(LABELS, params={"ordering": "desc"}, headers=headers)
    assert [label["key"] for label in await newest_first.json()] == ["newsletter", "trader-tier"]

    got = await api.get(f"{LABELS}/Trader-Tier", headers=headers)
    assert (await got.json())["value"] == "gold"
    patched = await api.patch(
        f"{RESOURCE_ALIAS}/labels/trader-tier", json={"value": "PLATINUM"}, headers=headers
    )
    assert patched.status == 200, await patched.text()
    assert (await patched.json())["value"] == "platinum"
    deleted = await api.delete(f"{LABELS}/newsletter", headers=headers)
    assert deleted.status == 204
    gone = await api.get(f"{LABELS}/newsletter", headers=headers)
    assert await errors_of(gone, 404) == ["record.not_found"]

    stored = await SqlLabelRepository(services.engine).for_user(account.user.id)
    assert [(label.key, label.value, label.scope) for label in stored] == [
        ("trader-tier", "platinum", "public")
    ]
    user = await services.users.get_by_uid(account.user.uid)
    assert (user.state, user.level) == ("active", 0)  # public labels move neither


async def test_private_labels_are_out_of_reach(api: Any, member: Any, services: Any) -> None:
    account, headers = member
    await services.users.put_label(account.user.uid, "email", "verified", "private", AccountRules())
    private = ["resource.labels.private"]
    assert await errors_of(await api.get(f"{LABELS}/email", headers=headers), 400) == private
    patch = await api.patch(f"{LABELS}/email", json={"value": "unverified"}, headers=headers)
    assert await errors_of(patch, 400) == private
    assert await errors_of(await api.delete(f"{LABELS}/email", headers=headers), 400) == private
    post = await api.post(LABELS, json={"key": "email", "value": "verified"}, headers=headers)
    assert await errors_of(post, 400) == private
    assert await (await api.get(LABELS, headers=headers)).json() == []
    stored = await SqlLabelRepository(services.engine).for_user(account.user.id)
    assert [(label.key, label.value, label.scope) for label in stored] == [("email", "verified", "private")]
    assert (await services.users.get_by_uid(account.user.uid)).level == 1


async def test_a_second_public_label_with_the_same_key_is_taken(api: Any, member: Any) -> None:
    _, headers = member
    assert (await api.post(LABELS, json={"key": "tier", "value": "gold"}, headers=headers)).status == 201
    again = await api.post(LABELS, json={"key": "TIER", "value": "silver"}, headers=headers)
    assert await errors_of(again, 422) == ["key.taken"]
    [label] = await (await api.get(LABELS, headers=headers)).json()
    assert label["value"] == "gold"


async def test_labels_of_other_users_are_invisible(api: Any, member: Any, make_user: Any) -> None:
    _, headers = member
    other = await make_user()
    other_headers = bearer(await jwt_for(api, other))
    assert (
        await api.post(LABELS, json={"key": "tier", "value": "gold"}, headers=other_headers)
    ).status == 201
    assert await errors_of(await api.get(f"{LABELS}/tier", headers=headers), 404) == ["record.not_found"]
    patch = await api.patch(f"{LABELS}/tier", json={"value": "silver"}, headers=headers)
    assert await errors_of(patch, 404) == ["record.not_found"]
    assert await errors_of(await api.delete(f"{LABELS}/tier", headers=headers), 404) == ["record.not_found"]
    assert await (await api.get(LABELS, headers=headers)).json() == []


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("body", "keys"),
    [
        ({}, ["resource.label.missing_key", "resource.label.missing_value"]),
        ({"key": " ", "value": ""}, ["resource.label.empty_key", "resource.label.empty_value"]),
        ({"key": "ab", "value": "x" * 256}, ["key.too_short", "value.too_long"]),
        ({"key": "no spaces", "value": "ok!"}, ["key.invalid", "value.invalid"]),
        ({"key": "é!", "value": "fine"}, ["key.too_short", "key.invalid"]),
        ({"key": "tier", "value": 5}, ["resource.label.invalid_value"]),
    ],
)
async def test_invalid_labels_are_refused_with_every_reason(
    api: Any, member: Any, body: dict[str, Any], keys: list[str]
) -> None:
    _, headers = member
    assert await errors_of(await api.post(LABELS, json=body, headers=headers), 422) == keys
    assert await (await api.get(LABELS, headers=headers)).json() == []


@SQLITE_ONLY
async def test_update_validates_the_value_and_listing_the_ordering(api: Any, member: Any) -> None:
    _, headers = member
    assert (await api.post(LABELS, json={"key": "tier", "value": "gold"}, headers=headers)).status == 201
    bad = await api.patch(f"{LABELS}/tier", json={"value": "no"}, headers=headers)
    assert await errors_of(bad, 422) == ["value.too_short"]
    missing = await api.patch(f"{LABELS}/tier", json={}, headers=headers)
    assert await errors_of(missing, 422) == ["resource.label.missing_value"]
    unknown = await api.patch(f"{LABELS}/nothing", json={"value": "no"}, headers=headers)
    assert await errors_of(unknown, 404) == ["record.not_found"]
    for wrong in ("sideways", ""):
        ordering = await api.get(LABELS, params={"ordering": wrong}, headers=headers)
        assert await errors_of(ordering, 422) == ["resource.label.invalid_ordering"]
    [label] = await (await api.get(LABELS, headers=headers)).json()
    assert label["value"] == "gold"


@SQLITE_ONLY
async def test_every_public_label_write_is_announced(
    api: Any, member: Any, services: Any, settings: Any
) -> None:
    account, headers = member
    pubsub = services.redis.pubsub()
    await pubsub.subscribe(channel(settings.redis_namespace))
    assert (await api.post(LABELS, json={"key": "tier", "value": "gold"}, headers=headers)).status == 201
    assert (await api.patch(f"{LABELS}/tier", json={"value": "silver"}, headers=headers)).status == 200
    assert (await api.delete(f"{LABELS}/tier", headers=headers)).status == 204
    announced: list[str] = []
    deadline = time.monotonic() + 1.0
    while len(announced) < 3 and time.monotonic() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            announced.append(message["data"])
    await pubsub.aclose()
    assert announced == [f"user:{account.user.uid}"] * 3
