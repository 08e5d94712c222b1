"""``/resource/users/...``: the signed-in user's own account over the real app (barong-behavior.md §4.6,
§9, with decisions.md: a password change revokes the user's other sessions).

Flows that write SQL run on SQLite and PostgreSQL; parameter checks run on SQLite only.
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from identity.account_rules import AccountRules
from identity.labels import SqlLabelRepository
from identity.models import Activity
from identity.totp import STEP, code_at
from tests.authz.helpers import eventually
from tests.identity.helpers import decision_status, login, with_cookie, wrong_totp
from tests.resource.helpers import ME, RESOURCE, RESOURCE_ALIAS, bearer, errors_of, jwt_for

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
PASSWORD = f"{RESOURCE}/users/password"
ACTIVITY = f"{RESOURCE}/users/activity"
NEW_PASSWORD = "Another-Secret-77"


async def cookie_and_token(client: Any, account: Any) -> tuple[str, str]:
    """A fresh login's cookie and the JWT the decision endpoint mints for it."""
    cookie, _ = await login(client, account)
    response = await client.get(f"/api/v2/auth{ME}", headers=with_cookie(cookie))
    assert response.status == 200, await response.text()
    return cookie, response.headers["Authorization"]


async def test_me_shows_labels_profiles_and_data_storages(api: Any, make_user: Any, services: Any) -> None:
    account = await make_user()
    token = await jwt_for(api, account)
    await services.users.put_label(account.user.uid, "email", "verified", "private", AccountRules())
    headers = bearer(token)
    profile = {"first_name": "Ada", "last_name": "Lovelace", "dob": "1815-12-10", "country": "gb"}
    assert (await api.post(f"{RESOURCE}/profiles", json=profile, headers=headers)).status == 201
    storage = {"title": "kyc", "data": '{"source": "web"}'}
    assert (await api.post(f"{RESOURCE}/data_storage", json=storage, headers=headers)).status == 201
    for path in (ME, f"{RESOURCE_ALIAS}/users/me"):
        response = await api.get(path, headers=headers)
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body["uid"] == account.user.uid
        assert [(label["key"], label["value"], label["scope"]) for label in body["labels"]] == [
            ("email", "verified", "private")
        ]
        [shown] = body["profiles"]
        assert (shown["first_name"], shown["last_name"], shown["dob"], shown["country"], shown["state"]) == (
            "Ada",
            "L*******",
            "1815-**-**",
            "GB",
            "drafted",
        )
        [stored] = body["data_storages"]
        assert (stored["title"], stored["data"]) == ("kyc", '{"source": "web"}')
        assert body["phones"] == []


async def test_put_me_replaces_the_json_data(api: Any, make_user: Any, services: Any) -> None:
    account = await make_user()
    token = await jwt_for(api, account)
    response = await api.put(ME, json={"data": '{"language": "ru"}'}, headers=bearer(token))
    assert response.status == 200, await response.text()
    assert (await response.json())["data"] == '{"language": "ru"}'
    response = await api.put(ME, json={"data": {"nickname": "ada"}}, headers=bearer(token))
    assert (await response.json())["data"] == '{"nickname":"ada"}'
    stored = await services.users.get_by_uid(account.user.uid)
    assert stored.data == '{"nickname":"ada"}'


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({}, "resource.user.missing_data"),
        ({"data": "  "}, "resource.user.empty_data"),
        ({"data": "not json"}, "data.invalid_format"),
        ({"data": "[1, 2]"}, "data.invalid_format"),
        ({"data": 42}, "data.invalid_format"),
        ({"data": '{"a": "' + "x" * 1100 + '"}'}, "data.too_long"),
    ],
)
async def test_put_me_refuses_data_that_is_not_a_json_object(
    api: Any, make_user: Any, services: Any, body: dict[str, Any], key: str
) -> None:
    account = await make_user()
    token = await jwt_for(api, account)
    assert await errors_of(await api.put(ME, json=body, headers=bearer(token)), 422) == [key]
    assert (await services.users.get_by_uid(account.user.uid)).data is None


async def test_deleting_the_account_shuts_every_door(api: Any, make_user: Any, services: Any) -> None:
    account = await make_user()
    other_cookie, _ = await login(api, account)
    cookie, token = await cookie_and_token(api, account)
    key = await services.api_keys.create(holder_id=account.user.id)
    wrong = await api.delete(ME, params={"password": "Wrong-Passw0rd"}, headers=bearer(token))
    assert await errors_of(wrong, 422) == ["resource.user.invalid_password"]
    assert (await services.users.get_by_uid(account.user.uid)).state == "active"

    response = await api.delete(ME, params={"password": account.password}, headers=bearer(token))
    assert response.status == 204, await response.text()
    user = await services.users.get_by_uid(account.user.uid)
    assert user.state == "deleted"
    labels = await SqlLabelRepository(services.engine).for_user(user.id)
    assert [(label.key, label.value, label.scope) for label in labels] == [("delete", "by_user", "private")]
    assert (await services.api_keys.get(key.kid)).state == "inactive"
    for session in (cookie, other_cookie):
        assert (await decision_status(api, session))[0] == 401
    assert await errors_of(await api.get(ME, headers=bearer(token)), 401) == ["jwt.decode_and_verify"]
    actions = [(a.topic, a.action, a.result) for a in await services.activities.list(user_id=user.id)]
    assert ("account", "delete account", "failed") in actions
    assert ("account", "delete account", "succeed") in actions


@SQLITE_ONLY
async def test_deleting_an_account_with_2fa_needs_a_fresh_code(
    api: Any, make_user: Any, services: Any, clock: Any
) -> None:
    account = await make_user(otp=True)
    token = await jwt_for(api, account, otp_code=code_at(account.otp_secret, clock.now))
    clock.advance(STEP)
    headers = bearer(token)
    cases = [
        ({"password": account.password}, "resource.user.missing_otp_code"),
        ({"password": account.password, "otp_code": ""}, "resource.user.empty_otp_code"),
        (
            {"password": account.password, "otp_code": wrong_totp(account.otp_secret, clock.now)},
            "resource.user.invalid_otp",
        ),
        ({}, "resource.user.missing_password"),
        ({"password": ""}, "resource.user.empty_password"),
    ]
    for body, key in cases:
        assert await errors_of(await api.delete(ME, json=body, headers=headers), 422) == [key]
    assert (await services.users.get_by_uid(account.user.uid)).state == "active"
    body = {"password": account.password, "otp_code": code_at(account.otp_secret, clock.now)}
    response = await api.delete(ME, json=body, headers=headers)
    assert response.status == 204, await response.text()
    assert (await services.users.get_by_uid(account.user.uid)).state == "deleted"


async def test_password_change_revokes_the_other_sessions_and_keeps_this_one(
    api: Any, make_user: Any, services: Any, settings: Any
) -> None:
    account = await make_user()
    other, _ = await login(api, account)
    cookie, token = await cookie_and_token(api, account)
    body = {"old_password": account.password, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}
    headers = {**bearer(token), "Cookie": f"_barong_session={cookie}"}  # as the gateway forwards it
    response = await api.put(PASSWORD, json=body, headers=headers)
    assert response.status == 201, await response.text()
    assert (await decision_status(api, other))[0] == 401
    assert (await decision_status(api, cookie))[0] == 200
    account.password = NEW_PASSWORD
    await login(api, account)
    actions = [(a.topic, a.action, a.result) for a in await services.activities.list(user_id=account.user.id)]
    assert ("password", "password change", "succeed") in actions
    outbox = Path(settings.data_dir) / "outbox"

    async def mails() -> list[Any]:
        files = sorted(outbox.glob("*password_changed*.eml")) if outbox.exists() else []
        return [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]

    [mail] = await eventually(mails, lambda found: len(found) == 1, within=5.0)
    assert mail["To"] == account.user.email


@SQLITE_ONLY
async def test_password_change_checks_in_barongs_order(api: Any, make_user: Any, services: Any) -> None:
    account = await make_user()
    token = await jwt_for(api, account)

    async def change(old: str, new: str, confirm: str, status: int) -> list[str]:
        body = {"old_password": old, "new_password": new, "confirm_password": confirm}
        return await errors_of(await api.put(PASSWORD, json=body, headers=bearer(token)), status)

    assert await change("Wrong-Passw0rd", NEW_PASSWORD, "other", 422) == ["resource.password.doesnt_match"]
    assert await change("Wrong-Passw0rd", NEW_PASSWORD, NEW_PASSWORD, 400) == [
        "resource.password.prev_pass_not_correct"
    ]
    same = account.password
    assert await change(same, same, same, 400) == ["resource.password.no_change_provided"]
    assert await change(same, "Password1", "Password1", 422) == ["password.weak"]
    assert await change(same, "short", "short", 422) == ["password.requirements"]
    missing = await api.put(PASSWORD, json={"new_password": ""}, headers=bearer(token))
    assert await errors_of(missing, 422) == [
        "resource.user.missing_old_password",
        "resource.user.empty_new_password",
        "resource.user.missing_confirm_password",
    ]
    reasons = [
        (a.result, a.data)
        for a in await services.activities.list(user_id=account.user.id)
        if a.action == "password change"
    ]
    assert [result for result, _ in reasons] == ["failed"] * 5
    assert "Previous password is not correct" in reasons[1][1]
    await login(api, account)  # the password is unchanged


def _entry(user_id: int, topic: str, result: str, at: datetime, category: str = "user") -> Activity:
    return Activity(
        category=category,
        topic=topic,
        action=f"{topic} {result}",
        result=result,
        user_ip="81.2.69.10",
        user_agent="Mozilla/5.0",
        user_id=user_id,
        user_ip_country="United Kingdom",
        created_at=at,
    )


async def test_activity_lists_the_users_own_entries_newest_first_with_filters_and_pages(
    api: Any, make_user: Any, services: Any
) -> None:
    account = await make_user()
    stranger = await make_user()
    token = await jwt_for(api, account)  # the login writes a session activity now
    start = datetime(2021, 6, 1, tzinfo=UTC)
    await services.activities.add_many(
        [
            _entry(account.user.id, "password", "succeed", start),
            _entry(account.user.id, "otp", "failed", start + timedelta(hours=1)),
            _entry(account.user.id, "password", "failed", start + timedelta(hours=2)),
            _entry(account.user.id, "account", "succeed", start + timedelta(hours=3)),
            _entry(account.user.id, "password", "denied", start + timedelta(hours=4), category="admin"),
            _entry(stranger.user.id, "password", "succeed", start + timedelta(hours=1)),
        ]
    )

    async def listing(topic: str, **query: Any) -> tuple[list[dict[str, Any]], Any]:
        response = await api.get(f"{ACTIVITY}/{topic}", params=query, headers=bearer(token))
        assert response.status == 200, await response.text()
        return await response.json(), response.headers

    everything, headers = await listing("all")
    assert [a["topic"] for a in everything] == ["session", "account", "password", "otp", "password"]
    assert headers["Total"] == "5"
    assert set(everything[0]) == {
        "id", "user_ip", "user_ip_country", "user_agent", "topic", "action", "result", "data", "created_at"
    }  # fmt: skip
    assert everything[-1]["created_at"] == "2021-06-01T00:00:00Z"
    passwords, _ = await listing("password")
    assert [a["result"] for a in passwords] == ["failed", "succeed"]
    failed, _ = await listing("all", result="failed")
    assert [a["topic"] for a in failed] == ["password", "otp"]
    since = int((start + timedelta(hours=1)).timestamp())
    until = int((start + timedelta(hours=3)).timestamp())
    window, _ = await listing("all", time_from=since, time_to=until)
    assert [a["topic"] for a in window] == ["password", "otp"]
    page, headers = await listing("all", page=2, limit=2)
    assert [a["topic"] for a in page] == ["password", "otp"]
    assert (headers["Total"], headers["Page"], headers["Per-Page"]) == ("5", "2", "2")
    assert 'rel="next"' in headers["Link"] and 'rel="prev"' in headers["Link"]
    alias = await api.get(f"{RESOURCE_ALIAS}/users/activity/otp", headers=bearer(token))
    assert [a["topic"] for a in await alias.json()] == ["otp"]


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("topic", "query", "keys"),
    [
        ("profile", {}, ["resource.user.wrong_topic"]),
        ("otp", {}, ["resource.user.no_activity"]),
        ("all", {"time_from": "yesterday"}, ["resource.user.non_integer_time_from"]),
        (
            "all",
            {"time_to": "1.5", "result": "maybe"},
            ["resource.user.non_integer_time_to", "resource.user.invalid_result"],
        ),
        ("all", {"page": "0", "limit": "1000"}, ["non_positive_page", "invalid_limit"]),
        ("all", {"time_from": "99999999999999999"}, ["resource.user.invalid_time_from"]),
    ],
)
async def test_activity_refuses_bad_filters(
    api: Any, make_user: Any, topic: str, query: dict[str, str], keys: list[str]
) -> None:
    account = await make_user()
    token = await jwt_for(api, account)
    response = await api.get(f"{ACTIVITY}/{topic}", params=query, headers=bearer(token))
    assert await errors_of(response, 422) == keys
