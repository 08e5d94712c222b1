"""``GET /admin/metrics``, ``GET /admin/levels`` and ``GET /admin/abilities``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from sqlalchemy import delete

from identity.db import documents, levels, utcnow
from identity.labels import SqlLabelRepository
from identity.models import Activity
from tests.admin.conftest import ADMIN, ADMIN_ALIAS
from tests.identity.helpers import UA, browser
from tests.resource.helpers import bearer, errors_of, jwt_for

ABILITIES_FILE = Path(__file__).resolve().parents[2] / "policies" / "abilities.yml"


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def activity(
    user: Any, topic: str, action: str, when: str, result: str = "succeed", category: str = "user"
) -> Activity:
    return Activity(
        category=category,
        topic=topic,
        action=action,
        result=result,
        user_id=user.id,
        user_ip="81.2.69.10",
        user_agent=UA,
        created_at=moment(when),
    )


@pytest.fixture
async def history(services: Any, make_user: Any) -> None:
    """Sign-ups and logins over three days of March 2024, with activities that do not count, and documents
    pending review: a, b (label ``pending``), e (``replaced``) and f (uploaded, not yet labelled), as
    ``GET /users/documents/pending`` lists them."""
    users = [(await make_user()).user for _ in range(6)]
    a, b, c, d, e, f = users
    await services.activities.add_many(
        [
            activity(a, "account", "signup", "2024-03-01T00:00:00"),
            activity(b, "account", "signup", "2024-03-01T23:59:59"),
            activity(c, "account", "signup", "2024-03-03T12:00:00"),
            activity(d, "account", "signup", "2024-03-02T12:00:00", result="failed"),  # not a sign-up
            activity(a, "session", "login", "2024-03-01T23:59:59"),
            activity(a, "session", "login", "2024-03-02T00:00:00"),
            activity(b, "session", "login::2fa", "2024-03-02T08:00:00"),
            activity(b, "session", "login", "2024-03-02T09:00:00", result="failed"),
            activity(c, "session", "login", "2024-03-03T10:00:00", result="failed"),
            activity(c, "session", "login::2fa", "2024-03-03T10:00:30", result="failed"),
            activity(c, "session", "logout", "2024-03-03T11:00:00"),  # not a login
            activity(c, "session", "login", "2024-03-03T11:00:00", category="admin"),  # not a user's
            activity(d, "password", "password change", "2024-03-02T10:00:00", result="failed"),
        ]
    )
    async with services.engine.begin() as conn:
        for user in (a, b):
            await SqlLabelRepository.put_in(conn, user.id, "document", "pending", "private")
        await SqlLabelRepository.put_in(conn, c.id, "document", "pending", "public")  # not the admins' label
        await SqlLabelRepository.put_in(conn, d.id, "document", "verified", "private")
        await SqlLabelRepository.put_in(conn, e.id, "document", "replaced", "private")
        now = utcnow()
        for user in (d, f):  # d's documents are verified already
            await conn.execute(
                documents.insert().values(
                    user_id=user.id, doc_type="passport", upload="x.png", created_at=now, updated_at=now
                )
            )


ALL_DAYS = {
    "signups": {"2024-03-01": 2, "2024-03-03": 1},
    "sucessful_logins": {"2024-03-01": 1, "2024-03-02": 2},
    "failed_logins": {"2024-03-02": 1, "2024-03-03": 2},
    "pending_applications": 4,
}


def days(body: dict[str, Any], *wanted: str) -> dict[str, Any]:
    return {
        key: {day: n for day, n in value.items() if day in wanted} if isinstance(value, dict) else value
        for key, value in body.items()
    }


async def metrics(api: Any, caller: Any, **params: Any) -> dict[str, Any]:
    response = await api.get(f"{ADMIN}/metrics", params=params, headers=caller.headers)
    assert response.status == 200, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def test_metrics_count_signups_and_logins_per_day_and_pending_documents(
    api: Any, superadmin: Any, history: None
) -> None:
    body = await metrics(api, superadmin)
    assert set(body) == {"signups", "sucessful_logins", "failed_logins", "pending_applications"}  # Barong's
    assert days(body, "2024-03-01", "2024-03-02", "2024-03-03") == ALL_DAYS
    # Beyond March 2024: the superadmin's own sign-in, today.
    later = {day: n for day, n in body["sucessful_logins"].items() if not day.startswith("2024-03")}
    assert list(later.values()) == [1]
    assert await metrics(api, superadmin, created_to="2024-12-31") == ALL_DAYS
    listed = await api.get(f"{ADMIN}/users/documents/pending", headers=superadmin.headers)
    assert listed.status == 200, await listed.text()
    assert int(listed.headers["Total"]) == body["pending_applications"]  # one definition of "pending"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"created_from": "2024-03-02"}, ("2024-03-02", "2024-03-03")),
        ({"created_to": "2024-03-02"}, ("2024-03-01", "2024-03-02")),  # a date is its whole day
        ({"created_from": "2024-03-02", "created_to": "2024-03-02"}, ("2024-03-02",)),
        (
            {"created_from": str(int(moment("2024-03-02T00:00:00").timestamp())), "created_to": "2024-03-02"},
            ("2024-03-02",),
        ),
        ({"created_from": "2024-03-04", "created_to": "2024-12-31"}, ()),
        ({"created_from": "", "created_to": "2024-12-31"}, ("2024-03-01", "2024-03-02", "2024-03-03")),
        (
            {"created_from": "2024-03-01T23:59:59Z", "created_to": "2024-03-02T00:00:00+00:00"},
            {
                "signups": {"2024-03-01": 1},
                "sucessful_logins": {"2024-03-01": 1, "2024-03-02": 1},
                "failed_logins": {},
            },
        ),
        (  # 23:00 UTC the day before, to 08:59:59 UTC (no offset: UTC)
            {"created_from": "2024-03-02T01:00:00+02:00", "created_to": "2024-03-02T08:59:59"},
            {
                "signups": {"2024-03-01": 1},
                "sucessful_logins": {"2024-03-01": 1, "2024-03-02": 2},
                "failed_logins": {},
            },
        ),
    ],
)
async def test_metrics_period(
    api: Any, superadmin: Any, history: None, params: dict[str, str], expected: Any
) -> None:
    if isinstance(expected, tuple):
        expected = days(ALL_DAYS, *expected)
    params = {"created_to": "2024-12-31", **params}  # not the superadmin's sign-in, today
    assert await metrics(api, superadmin, **params) == {"pending_applications": 4, **expected}


async def test_metrics_report_every_bad_period_parameter_at_once(api: Any, superadmin: Any) -> None:
    response = await api.get(
        f"{ADMIN}/metrics",
        params={"created_from": "yesterday", "created_to": "2024-13-01"},
        headers=superadmin.headers,
    )
    assert await errors_of(response, 422) == [
        "admin.metrics.invalid_created_from",
        "admin.metrics.invalid_created_to",
    ]
    response = await api.get(
        f"{ADMIN_ALIAS}/metrics",
        data=orjson.dumps({"created_from": ["2024-03-01"], "created_to": 10**15}),
        headers={**superadmin.headers, "Content-Type": "application/json"},
    )
    assert await errors_of(response, 422) == [
        "admin.metrics.invalid_created_from",
        "admin.metrics.invalid_created_to",
    ]


async def test_metrics_of_an_empty_service(api: Any, superadmin: Any) -> None:
    body = await metrics(api, superadmin, created_to="2024-12-31")
    assert body == {"signups": {}, "sucessful_logins": {}, "failed_logins": {}, "pending_applications": 0}


# --- levels ------------------------------------------------------------------------------------------------

BARONG_LEVELS = [
    {"id": 1, "key": "email", "value": "verified"},
    {"id": 2, "key": "phone", "value": "verified"},
    {"id": 3, "key": "document", "value": "verified"},
]


async def test_levels_are_read_from_the_levels_table(api: Any, superadmin: Any, services: Any) -> None:
    for prefix in (ADMIN, ADMIN_ALIAS):
        response = await api.get(f"{prefix}/levels", headers=superadmin.headers)
        assert response.status == 200
        assert await response.json() == BARONG_LEVELS
    try:
        async with services.engine.begin() as conn:
            await conn.execute(levels.insert().values(id=4, key="bank", value="verified", description="IBAN"))
        response = await api.get(f"{ADMIN}/levels", headers=superadmin.headers)
        assert await response.json() == [*BARONG_LEVELS, {"id": 4, "key": "bank", "value": "verified"}]
    finally:
        async with services.engine.begin() as conn:
            await conn.execute(delete(levels).where(levels.c.id == 4))


# --- abilities ---------------------------------------------------------------------------------------------


async def test_abilities_are_the_callers_entry_of_the_abilities_file(
    api: Any, sign_in: Any, open_table: Any
) -> None:
    await open_table(api)  # the shipped table lets no member into the admin API
    table = yaml.safe_load(ABILITIES_FILE.read_text())["admin_permissions"]
    assert {"superadmin", "admin", "technical", "accountant", "compliance", "support"} <= set(table)
    for role, grants in table.items():
        caller = await sign_in(role)
        response = await api.get(f"{ADMIN}/abilities", headers=caller.headers)
        assert response.status == 200
        assert await response.json() == grants, role
    member = await sign_in("member")  # no entry, and no admin abilities at all: still answered
    for prefix in (ADMIN, ADMIN_ALIAS):
        response = await api.get(f"{prefix}/abilities", headers=member.headers)
        assert (response.status, await response.json()) == (200, {})


async def test_abilities_need_a_valid_bearer_token(api: Any) -> None:
    for headers in (browser(), bearer("Bearer not-a-jwt")):
        assert await errors_of(await api.get(f"{ADMIN}/abilities", headers=headers), 401) == [
            "jwt.decode_and_verify"
        ]


async def test_another_abilities_file_changes_the_answers(
    make_client: Any, make_user: Any, tmp_path: Path, open_table: Any
) -> None:
    path = tmp_path / "abilities.yml"
    path.write_text("admin_permissions:\n  support:\n    read: [User]\n  member:\n    manage: [Level]\n")
    client = await make_client(abilities_file=path)
    await open_table(client)  # the shipped table lets no member into the admin API
    support = bearer(await jwt_for(client, await make_user(role="support")))
    member = bearer(await jwt_for(client, await make_user(role="member")))
    assert await (await client.get(f"{ADMIN}/abilities", headers=support)).json() == {"read": ["User"]}
    assert await (await client.get(f"{ADMIN}/abilities", headers=member)).json() == {"manage": ["Level"]}
    assert (await client.get(f"{ADMIN}/metrics", headers=support)).status == 200  # read User
    assert (await client.get(f"{ADMIN}/levels", headers=member)).status == 200  # manage Level
    for path_, headers in (("/levels", support), ("/metrics", member)):
        response = await client.get(f"{ADMIN}{path_}", headers=headers)
        assert await errors_of(response, 401) == ["admin.ability.not_permitted"], path_


async def test_metrics_and_levels_need_their_ability(api: Any, sign_in: Any, open_table: Any) -> None:
    member = await sign_in("member")
    await open_table(api)  # the table would refuse the member first (authz.invalid_permission)
    for path in ("/metrics", "/levels"):
        response = await api.get(f"{ADMIN}{path}", params={"created_from": "bad"}, headers=member.headers)
        assert await errors_of(response, 401) == ["admin.ability.not_permitted"]
        assert await errors_of(await api.get(f"{ADMIN}{path}", headers=browser()), 401) == [
            "jwt.decode_and_verify"
        ]
