"""``authz users set-role UID ROLE`` and ``authz users set-state UID STATE``: the admin API's changes from the
command line (``UserAdmin`` with ``Actor.cli()``), run in-process against the test databases and the
machine's Redis (fixtures of ``tests/authz/test_cli.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from authz.settings import Settings
from identity.totp import new_secret
from tests.authz import test_cli
from tests.authz.test_cli import Result, create_user, query

# The command's fixtures, shared with test_cli.py.
clean_env = test_cli.clean_env
cli = test_cli.cli
announcements = test_cli.announcements


def user(settings: Settings, uid: str) -> Any:
    return query(settings, lambda s: s.users.get_by_uid(uid))


def admin_activities(settings: Settings) -> list[Any]:
    return query(settings, lambda s: s.activities.list(category="admin"))


def test_set_state_bans_revokes_the_sessions_deactivates_the_keys_and_announces_it(
    cli: Any, settings: Settings, announcements: Callable[[], list[str]]
) -> None:
    uid = create_user(cli, "--otp-secret", new_secret())
    created = cli("api-keys", "create", "--uid", uid)
    kid = orjson.loads(created.out)["kid"]
    _, session = query(settings, lambda s: s.sessions.create(uid, "81.2.69.10", "Mozilla/5.0"))
    announcements()  # forget the setup's messages

    result = cli("users", "set-state", uid, "banned")
    assert result == Result(0, f"{uid}\tmember\tbanned\n", "")
    assert user(settings, uid).state == "banned"
    assert query(settings, lambda s: s.sessions.list_for_user(uid)) == []
    assert query(settings, lambda s: s.api_keys.get(kid)).state == "inactive"
    assert {f"user:{uid}", f"apikey:{kid}", f"session:{session.hash}"} <= set(announcements())
    (activity,) = admin_activities(settings)
    assert (activity.topic, activity.action, activity.target_uid, activity.user_id) == (
        "users",
        "update",
        uid,
        None,
    )
    assert orjson.loads(activity.data) == {"state": "banned", "previous": "active", "via": "cli"}


def test_set_role_gives_a_role_with_permissions_and_announces_it(
    cli: Any, settings: Settings, announcements: Callable[[], list[str]]
) -> None:
    uid = create_user(cli)
    announcements()
    result = cli("users", "set-role", uid, "admin")
    assert result == Result(0, f"{uid}\tadmin\tactive\n", "")
    assert user(settings, uid).role == "admin"
    assert f"user:{uid}" in announcements()
    (activity,) = admin_activities(settings)
    assert orjson.loads(activity.data) == {"role": "admin", "previous": "member", "via": "cli"}


@pytest.mark.parametrize(
    ("argv", "key"),
    [
        (("set-state", "IDFFFFFFFFFF", "banned"), "admin.user.doesnt_exist"),
        (("set-state", "<uid>", "asleep"), "admin.user.invalid_state"),
        (("set-state", "<uid>", "active"), "admin.user.state_no_change"),
        (("set-role", "<uid>", "wizard"), "role.doesnt_exist"),
        (("set-role", "<uid>", "member"), "admin.user.role_no_change"),
    ],
)
def test_refusals_print_the_error_key_and_change_nothing(
    cli: Any, settings: Settings, argv: tuple[str, ...], key: str
) -> None:
    uid = create_user(cli)
    result = cli("users", *(uid if arg == "<uid>" else arg for arg in argv))
    assert result == Result(1, "", f"error: {key}\n")
    after = user(settings, uid)
    assert (after.role, after.state) == ("member", "active")
    assert admin_activities(settings) == []


def test_set_state_without_redis_still_writes_and_says_so(
    cli: Any, settings: Settings, clean_env: pytest.MonkeyPatch
) -> None:
    uid = create_user(cli)
    clean_env.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    result = cli("users", "set-state", uid, "locked")
    assert (result.code, result.out) == (0, f"{uid}\tmember\tlocked\n")
    assert "sessions were not revoked" in result.err
    assert user(settings, uid).state == "locked"
