"""``authz permissions list|add|update|remove`` and ``authz restrictions update`` (and the other restriction
commands' use of the admin services), run in-process against the test databases and the machine's Redis
(fixtures of ``test_cli.py``).

The commands go through the admin API's services: the same validation and error keys, an admin activity
for each change (by the CLI: no admin user, ``"via": "cli"``), the same announcement to running instances.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from authz.services import Services
from authz.settings import Settings
from authz.superadmin_access import EXPLANATION
from identity.models import Activity
from tests.authz import test_cli
from tests.authz.test_cli import SMALL_POLICY, Result, create_user, query

# The command's fixtures, shared with test_cli.py.
clean_env = test_cli.clean_env
cli = test_cli.cli
announcements = test_cli.announcements


@pytest.fixture
def policy(cli: Any, tmp_path: Path) -> list[str]:
    """The small policy of test_cli.py imported (roles member and admin); the listed lines."""
    path = tmp_path / "policy.yml"
    path.write_text(SMALL_POLICY)
    assert cli("permissions", "import", str(path)).code == 0
    return [
        "1\tmember\tGET\tapi/v2/peatio/public\tACCEPT\t-",
        "2\tmember\tALL\tapi/v2/peatio/account\tACCEPT\t-",
        "3\tadmin\tPOST\tapi/v2/\tAUDIT\tadmin",
    ]


def admin_activities(settings: Settings, topic: str) -> list[Activity]:
    found = query(settings, lambda s: s.activities.list(category="admin"))
    return [a for a in found if a.topic == topic]


# --- permissions ------------------------------------------------------------------------------------


def test_permissions_list_add_update_remove(
    cli: Any, settings: Settings, policy: list[str], announcements: Callable[[], list[str]]
) -> None:
    announcements()
    assert cli("permissions", "list") == Result(0, "".join(f"{line}\n" for line in policy), "")

    added = cli(
        "permissions", "add", "--role", "member", "--verb", "get", "--path", "api/v2/x", "--action", "drop"
    )
    assert added == Result(0, "4\n", "")
    assert announcements() == ["permissions"]
    updated = cli("permissions", "update", "4", "--topic", "x", "--verb", "post")
    assert updated == Result(0, "4\tmember\tPOST\tapi/v2/x\tDROP\tx\n", "")
    assert cli("permissions", "list").out.splitlines() == [*policy, "4\tmember\tPOST\tapi/v2/x\tDROP\tx"]
    assert cli("permissions", "remove", "4") == Result(0, "removed permission 4\n", "")
    assert announcements() == ["permissions", "permissions"]
    assert cli("permissions", "list").out.splitlines() == policy

    recorded = admin_activities(settings, "permissions")
    assert [a.action for a in recorded] == ["create", "update", "delete"]
    first = recorded[0]
    assert (first.user_id, first.user_ip, first.user_agent, first.result) == (
        None,
        "127.0.0.1",
        "authz-cli",
        "succeed",
    )
    data = orjson.loads(first.data or "")
    assert data["via"] == "cli"
    assert data["after"] == {
        "id": 4,
        "role": "member",
        "verb": "GET",
        "path": "api/v2/x",
        "action": "DROP",
        "topic": None,
    }


@pytest.mark.parametrize(
    ("argv", "err"),
    [
        (
            ["add", "--role", "wizard", "--verb", "get", "--path", "api/v2", "--action", "accept"],
            "error: admin.permission.role_doesnt_exist\n",
        ),
        (
            ["add", "--role", "member", "--verb", "fetch", "--path", "/api/v2", "--action", "allow"],
            "error: admin.permissions.invalid_verb, admin.permissions.invalid_action,"
            " admin.permissions.invalid_path\n",
        ),
        (
            ["add", "--role", " ", "--verb", "get", "--path", "api/v2", "--action", "accept"],
            "error: admin.permission.empty_role\n",
        ),
        (["update", "1", "--action", "all"], "error: admin.permissions.invalid_action\n"),
        (["update", "one", "--action", "drop"], "error: admin.permission.invalid_id\n"),
        (["update", "99", "--action", "drop"], "error: admin.permission.doesnt_exist\n"),
        (["remove", "99"], "error: admin.permission.doesnt_exist\n"),
    ],
)
def test_permission_commands_refuse_what_the_api_refuses(
    cli: Any, settings: Settings, policy: list[str], argv: list[str], err: str
) -> None:
    assert cli("permissions", *argv) == Result(1, "", err)
    assert cli("permissions", "list").out.splitlines() == policy
    assert admin_activities(settings, "permissions") == []


def test_permission_commands_refuse_to_lock_every_superadmin_out_of_the_admin_api(
    cli: Any, settings: Settings, tmp_path: Path
) -> None:
    create_user(cli)  # seeds the default permissions
    before = cli("permissions", "list").out
    [everything] = [
        line.split("\t")[0]
        for line in before.splitlines()
        if line.split("\t")[1:5] == ["superadmin", "ALL", "api/v2", "ACCEPT"]
    ]
    (tmp_path / "small.yml").write_text(SMALL_POLICY)
    (tmp_path / "drop.yml").write_text(
        "permissions:\n  - { role: superadmin, verb: POST, path: api/v2/admin/permissions, action: DROP }\n"
    )
    refused = [
        ["remove", everything],
        ["update", everything, "--path", "api/v2/peatio"],
        ["add", "--role", "superadmin", "--verb", "all", "--path", "api/v2/barong/admin", "--action", "drop"],
        ["import", "--replace", str(tmp_path / "small.yml")],
        ["import", str(tmp_path / "drop.yml")],
    ]
    for argv in refused:
        assert cli("permissions", *argv) == Result(
            1, "", f"error: admin.permission.last_superadmin_access: {EXPLANATION}\n"
        ), argv
    assert cli("permissions", "list").out == before
    assert admin_activities(settings, "permissions") == []

    # A file that keeps the repair open (in either spelling) may replace the table.
    repair = "  - { role: superadmin, verb: ALL, path: api/v2/admin/permissions, action: ACCEPT }\n"
    (tmp_path / "repair.yml").write_text(SMALL_POLICY + repair)
    assert cli("permissions", "import", "--replace", str(tmp_path / "repair.yml")) == Result(
        0, "replaced with 4 permission(s)\n", ""
    )


# --- restrictions -----------------------------------------------------------------------------------


def test_restrictions_update_list_filters_and_remove_record_activities(
    cli: Any, settings: Settings, announcements: Callable[[], list[str]]
) -> None:
    announcements()
    first = cli("restrictions", "add", "--category", "blacklist", "--scope", "ip", "--value", "192.0.2.1")
    second = cli("restrictions", "add", "--category", "whitelist", "--scope", "country", "--value", "JP")
    ids = [first.out.strip(), second.out.strip()]
    updated = cli("restrictions", "update", ids[0], "--code", "451", "--state", "disabled")
    assert updated == Result(0, f"{ids[0]}\tblacklist\tip\t192.0.2.1\t451\tdisabled\n", "")
    assert announcements() == ["restrictions"] * 3
    assert (
        cli("restrictions", "list", "--scope", "country").out
        == f"{ids[1]}\twhitelist\tcountry\tJP\t423\tenabled\n"
    )
    assert cli("restrictions", "list", "--category", "blacklist").out.startswith(f"{ids[0]}\t")
    assert cli("restrictions", "list", "--scope", "city") == Result(
        1, "", "error: admin.restriction.invalid_scope\n"
    )
    assert cli("restrictions", "remove", ids[1]) == Result(0, f"removed restriction {ids[1]}\n", "")

    recorded = admin_activities(settings, "restrictions")
    assert [a.action for a in recorded] == ["create", "create", "update", "delete"]
    change = orjson.loads(recorded[2].data or "")
    assert (change["before"]["code"], change["after"]["code"], change["via"]) == (401, 451, "cli")


@pytest.mark.parametrize(
    ("argv", "err"),
    [
        (["update", "1", "--scope", "ip"], "error: value.invalid\n"),  # "FR" is no address
        (["update", "1", "--value", "JP"], "error: value.taken\n"),
        (["update", "1", "--code", "soon"], "error: admin.restriction.invalid_code\n"),
        (["update", "x", "--state", "enabled"], "error: admin.restriction.invalid_id\n"),
        (["update", "99", "--state", "enabled"], "error: admin.restriction.doesnt_exist\n"),
        (["remove", "x"], "error: admin.restriction.invalid_id\n"),
        (["whitelink", "--range", "week"], "error: admin.restriction.invalid_range\n"),
    ],
)
def test_restriction_commands_refuse_what_the_api_refuses(
    cli: Any, settings: Settings, argv: list[str], err: str
) -> None:
    for value in ("FR", "JP"):
        assert (
            cli("restrictions", "add", "--category", "blacklist", "--scope", "country", "--value", value).code
            == 0
        )
    before = cli("restrictions", "list").out
    assert cli("restrictions", *argv) == Result(1, "", err)
    assert cli("restrictions", "list").out == before


def test_restrictions_update_enabling_a_blocklogin_revokes_matching_sessions(
    cli: Any, settings: Settings
) -> None:
    async def open_two(services: Services) -> tuple[str, str]:
        user = await services.users.create(email="blocked@example.com", password_digest="x", state="active")
        _, blocked = await services.sessions.create(user.uid, "10.1.2.3", "UA")
        _, kept = await services.sessions.create(user.uid, "192.0.2.7", "UA")
        return blocked.hash, kept.hash

    blocked, kept = query(settings, open_two)
    added = cli(
        "restrictions", "add", "--category", "blocklogin", "--scope", "ip_subnet", "--value", "10.1.0.0/16",
        "--state", "disabled",
    )  # fmt: skip
    assert (added.code, added.err) == (0, "")
    assert query(settings, lambda s: s.sessions.get(blocked)) is not None
    enabled = cli("restrictions", "update", added.out.strip(), "--state", "enabled")
    assert enabled.code == 0
    assert "revoked 1 session(s)" in enabled.err
    assert query(settings, lambda s: s.sessions.get(blocked)) is None
    assert query(settings, lambda s: s.sessions.get(kept)) is not None
