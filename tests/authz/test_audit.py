"""The admin activities the decision endpoint records (``authz/audit.py``), on both databases."""

from __future__ import annotations

from typing import Any

import orjson

from tests.authz.helpers import admin_activities, cookie_headers, decide, error, new_user, open_session

ADMIN_USERS = "api/v2/barong/admin/users"


async def test_an_activity_whose_target_uid_holds_a_nul_is_written_without_a_target(
    client: Any, services: Any, clock: Any
) -> None:
    """A ``uid`` query parameter is the activity's target: one holding a NUL (which PostgreSQL's text cannot
    store) is no user's: the activity is written without a target rather than lost with its batch."""
    member = await new_user(services)
    cookie, _ = await open_session(services, member, clock)
    headers = cookie_headers(cookie)
    for uid in ["ID\x00123", "ID0123456789"]:
        status, body, _ = await decide(client, "GET", ADMIN_USERS, headers, params={"uid": uid})
        assert (status, body) == (401, error("authz.invalid_permission"))
    found = await admin_activities(services, 2)
    assert [(a.user_id, a.result, a.topic, a.target_uid) for a in found] == [
        (member.id, "denied", "users", None),
        (member.id, "denied", "users", "ID0123456789"),
    ]
    assert orjson.loads(found[0].data) == {"uid": "ID\x00123", "path": ADMIN_USERS}
