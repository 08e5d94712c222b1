"""``authz service-accounts create|list|disable`` and ``authz api-keys create`` for a service account, run
in-process against the test databases and the machine's Redis (fixtures of ``test_cli.py``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from authz.services import Services
from authz.settings import Settings
from identity.service_accounts import SqlServiceAccountRepository
from identity.totp import new_secret
from tests.authz import test_cli
from tests.authz.test_cli import Result, create_user, query

# The command's fixtures, shared with test_cli.py.
clean_env = test_cli.clean_env
cli = test_cli.cli
announcements = test_cli.announcements


def accounts(settings: Settings) -> list[Any]:
    return query(settings, lambda s: SqlServiceAccountRepository(s.engine).list_all())


def user(settings: Settings, uid: str) -> Any:
    return query(settings, lambda s: s.users.get_by_uid(uid))


def create_account(cli: Any, owner: str, *extra: str) -> str:
    result = cli("service-accounts", "create", "--owner", owner, "--role", "sa_maker", *extra)
    assert (result.code, result.err) == (0, ""), result.err
    return str(result.out.strip())


def test_create_prints_the_uid_and_copies_level_and_state_from_the_owner(
    cli: Any, settings: Settings
) -> None:
    owner_uid = create_user(cli, "--level", "2")
    owner = user(settings, owner_uid)
    uid = create_account(cli, owner_uid)
    assert re.fullmatch(r"SI[0-9A-F]{10}", uid)
    [account] = accounts(settings)
    local, domain = owner.email.split("@")
    assert (account.uid, account.email, account.role, account.level, account.state, account.owner_id) == (
        uid,
        f"{local}+{uid}@{domain}",
        "sa_maker",
        2,
        "active",
        owner.id,
    )


def test_create_takes_an_email_and_a_pending_owner_gives_a_pending_account(
    cli: Any, settings: Settings
) -> None:
    owner_uid = create_user(cli, "--state", "pending")
    uid = create_account(cli, owner_uid, "--email", "bot@example.com")
    [account] = accounts(settings)
    assert (account.uid, account.email, account.state) == (uid, "bot@example.com", "pending")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--owner", "IDFFFFFFFFFF", "--role", "sa_maker"], "no user with uid IDFFFFFFFFFF"),
        (["--role", "nobody"], "role 'nobody' has no permissions (role.doesnt_exist); known: "),
        (["--role", "sa_maker", "--email", "not-an-email"], "error: email.invalid"),
        (["--role", "sa_maker", "--email", "TAKEN"], "(email_or_uid.not_uniq)"),
    ],
)
def test_create_refuses_bad_input_and_writes_nothing(
    cli: Any, settings: Settings, options: list[str], message: str
) -> None:
    owner_uid = create_user(cli)
    options = list(options)  # the parameter list is shared by both databases' runs
    if "TAKEN" in options:
        options[options.index("TAKEN")] = user(settings, owner_uid).email.upper()  # e-mails clash in any case
    if "--owner" not in options:
        options = ["--owner", owner_uid, *options]
    result = cli("service-accounts", "create", *options)
    assert (result.code, result.out) == (1, "")
    assert message in result.err and len(result.err.splitlines()) == 1, result.err
    assert accounts(settings) == []


def test_list_prints_every_account_or_one_owners(cli: Any, settings: Settings) -> None:
    first, second = create_user(cli), create_user(cli)
    a = create_account(cli, first)
    b = create_account(cli, second, "--email", "bot@example.com")
    listed = cli("service-accounts", "list")
    assert listed.code == 0
    rows = [line.split("\t") for line in listed.out.splitlines()]
    assert [(r[0], r[2], r[3], r[4], r[5]) for r in rows] == [
        (a, "sa_maker", "0", "active", first),
        (b, "sa_maker", "0", "active", second),
    ]
    assert rows[1][1] == "bot@example.com"
    mine = cli("service-accounts", "list", "--owner", second)
    assert [line.split("\t")[0] for line in mine.out.splitlines()] == [b]
    unknown = cli("service-accounts", "list", "--owner", "IDFFFFFFFFFF")
    assert (unknown.code, unknown.out) == (1, "")
    assert "no user with uid IDFFFFFFFFFF" in unknown.err


def test_disable_deactivates_the_keys_and_announces_it(
    cli: Any, settings: Settings, announcements: Callable[[], list[str]]
) -> None:
    uid = create_account(cli, create_user(cli))
    created = cli("api-keys", "create", "--uid", uid)
    assert created.code == 0, created.err
    kid = orjson.loads(created.out)["kid"]
    announcements()  # forget the creation's message

    result = cli("service-accounts", "disable", uid)
    assert result == Result(0, f"disabled service account {uid}; 1 key(s) deactivated\n", "")
    [account] = accounts(settings)
    assert account.state == "disabled"
    key = query(settings, lambda s: s.api_keys.get(kid))
    assert key is not None and key.state == "inactive"
    assert set(announcements()) == {f"user:{uid}", f"apikey:{kid}"}

    again = cli("api-keys", "create", "--uid", uid)
    assert (again.code, again.out) == (1, "")
    assert "key_holder_account.invalid" in again.err


def test_disable_refuses_an_unknown_uid(cli: Any) -> None:
    result = cli("service-accounts", "disable", "SIFFFFFFFFFF")
    assert (result.code, result.out) == (1, "")
    assert "no service account with uid SIFFFFFFFFFF" in result.err


def test_api_keys_create_takes_a_service_account_uid_without_2fa(cli: Any, settings: Settings) -> None:
    """The owner has no 2FA: a service account's key needs none (its owner's turning 2FA off revokes it)."""
    uid = create_account(cli, create_user(cli))
    result = cli("api-keys", "create", "--uid", uid, "--algorithm", "HS384")
    assert result.code == 0, result.err
    printed = orjson.loads(result.out)

    async def look(services: Services) -> Any:
        return await services.api_keys.get(printed["kid"])

    key = query(settings, look)
    [account] = accounts(settings)
    assert (key.holder_type, key.holder_id, key.algorithm, key.state) == (
        "ServiceAccount",
        account.id,
        "HS384",
        "active",
    )


def test_api_keys_create_still_needs_2fa_of_users(cli: Any) -> None:
    owner = create_user(cli, "--otp-secret", new_secret())
    assert cli("api-keys", "create", "--uid", owner).code == 0
    result = cli("api-keys", "create", "--uid", create_user(cli))
    assert result.code == 1 and "resource.api_key.2fa_disabled" in result.err
