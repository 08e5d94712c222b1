"""The ``authz`` command, run in-process (``authz.cli.main``) against a temporary data dir, the test
databases (SQLite and PostgreSQL) and the machine's Redis.

``main`` reads its settings from ``os.environ``, so each test sets the variables with ``monkeypatch``.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import stat
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
import redis as redis_sync
from sqlalchemy import select

from authz.cli import main
from authz.services import Services
from authz.settings import ENVIRONMENT_VARIABLES, PROJECT_ROOT, Settings
from identity.db import api_keys
from identity.login import otp_context
from identity.models import Permission
from identity.passwords import verify_password
from identity.permissions_file import parse_permissions
from identity.totp import new_secret
from tests.identity.helpers import cheap_argon2, jwt_key_pem

T = TypeVar("T")
# For behaviour decided before the database is touched (argument checks, configuration, keys).
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
DEFAULT_PERMISSIONS = PROJECT_ROOT / "policies" / "permissions.yml"
SMALL_POLICY = """\
permissions:
  - { role: member, verb: GET, path: api/v2/peatio/public, action: ACCEPT }
  - { role: member, verb: ALL, path: api/v2/peatio/account, action: ACCEPT }
  - { role: admin, verb: POST, path: api/v2/, action: AUDIT, topic: admin }
"""


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ``AUTHZ_*``, ``DATABASE_URL`` or ``REDIS_URL`` from the machine leaks into the command."""
    for name in ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    return monkeypatch


@pytest.fixture
def cli(clean_env: pytest.MonkeyPatch, settings: Settings, capsys: pytest.CaptureFixture[str]) -> Any:
    """``cli("users", "create", ...)`` runs the command on the test's data dir, database and Redis."""
    cheap_argon2(clean_env)
    clean_env.setenv("AUTHZ_DATA_DIR", str(settings.data_dir))
    clean_env.setenv("DATABASE_URL", settings.database_url)
    clean_env.setenv("REDIS_URL", settings.redis_url)
    clean_env.setenv("AUTHZ_REDIS_NAMESPACE", settings.redis_namespace)
    return command_runner(capsys)


def command_runner(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """``run("users", "create", ...)``: the command's exit code and what it printed."""

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def query(settings: Settings, body: Callable[[Services], Awaitable[T]]) -> T:
    """Look at the storage the command wrote to, with the same repositories."""

    async def run() -> T:
        services = Services.open(settings, settings.redis_url)
        try:
            return await body(services)
        finally:
            await services.close()

    return asyncio.run(run())


@pytest.fixture
def announcements(settings: Settings) -> Iterator[Callable[[], list[str]]]:
    """The change messages published on the namespace's channel since the fixture started."""
    client = redis_sync.Redis.from_url(settings.redis_url, decode_responses=True)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"{settings.redis_namespace}:changes")

    def received() -> list[str]:
        messages = []
        while (message := pubsub.get_message(timeout=0.2)) is not None:
            messages.append(message["data"])
        return messages

    pubsub.get_message(timeout=1.0)  # the subscription confirmation
    yield received
    pubsub.close()
    client.close()


def rows(perms: list[Permission]) -> list[tuple[str, str, str, str, str | None]]:
    return [(p.role, p.verb, p.path, p.action, p.topic) for p in perms]


# --- db upgrade -------------------------------------------------------------------------------------


def test_db_upgrade_creates_the_schema_in_a_fresh_data_dir(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("AUTHZ_DATA_DIR", str(tmp_path / "fresh"))
    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out == "database is up to date\n"
    with sqlite3.connect(tmp_path / "fresh" / "authz.sqlite3") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = db.execute("SELECT version_num FROM alembic_version").fetchall()
    assert {"users", "api_keys", "permissions", "restrictions", "activities", "alembic_version"} <= tables
    assert len(version) == 1
    assert main(["db", "upgrade"]) == 0  # idempotent


def test_db_upgrade_on_the_test_databases(cli: Any) -> None:
    assert cli("db", "upgrade") == Result(0, "database is up to date\n", "")


# --- users ------------------------------------------------------------------------------------------


def test_users_create_prints_the_uid_of_an_active_member(cli: Any, settings: Settings) -> None:
    result = cli("users", "create", "--email", "ops@example.com", "--password", "Secret-Passw0rd")
    assert result.code == 0, result.err
    uid = result.out.strip()
    assert re.fullmatch(r"ID[0-9A-F]{10}", uid)
    credentials = query(settings, lambda s: s.users.credentials("ops@example.com"))
    assert credentials is not None
    user = credentials.user
    assert (user.uid, user.role, user.state, user.level, user.otp) == (uid, "member", "active", 0, False)
    assert credentials.password_digest.startswith("$argon2id$")
    assert verify_password(credentials.password_digest, "Secret-Passw0rd")


def test_users_create_on_a_fresh_install_seeds_the_default_roles(cli: Any, settings: Settings) -> None:
    assert cli("permissions", "export").out == "permissions: []\n"
    result = cli(
        "users",
        "create",
        "--email",
        "root@example.com",
        "--password",
        "Secret-Passw0rd",
        "--role",
        "superadmin",
    )
    assert result.code == 0, result.err
    stored = query(settings, lambda s: s.permissions.list_all())
    assert rows(stored) == rows(parse_permissions(DEFAULT_PERMISSIONS.read_text()))


def test_users_create_takes_role_state_level_and_a_totp_secret(cli: Any, settings: Settings) -> None:
    secret = new_secret().lower()
    result = cli(
        "users", "create", "--email", "bot@example.com", "--password", "Secret-Passw0rd",
        "--role", "admin", "--state", "pending", "--level", "3", "--otp-secret", secret,
    )  # fmt: skip
    assert result.code == 0, result.err

    async def look(services: Services) -> tuple[Any, str]:
        credentials = await services.users.credentials("bot@example.com")
        assert credentials is not None and credentials.otp_secret_encrypted
        box_secret = services.box.decrypt(
            credentials.otp_secret_encrypted, context=otp_context(credentials.user.uid)
        )
        return credentials.user, box_secret

    user, stored_secret = query(settings, look)
    assert (user.role, user.state, user.level, user.otp) == ("admin", "pending", 3, True)
    assert stored_secret == secret.upper()


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--role", "wizard"], "role 'wizard' has no permissions (role.doesnt_exist)"),
        (["--state", "asleep"], "--state must be one of pending, active, banned, deleted, locked"),
        (["--level", "-1"], "--level must be 0 or more"),
        (["--otp-secret", "not base32!"], "--otp-secret must be a base32 TOTP secret"),
    ],
)
def test_users_create_refuses_bad_input(cli: Any, settings: Settings, extra: list[str], message: str) -> None:
    result = cli("users", "create", "--email", "x@example.com", "--password", "Secret-Passw0rd", *extra)
    assert (result.code, result.out) == (1, "")
    assert result.err.startswith("error: ") and message in result.err
    assert query(settings, lambda s: s.users.count()) == 0


def test_users_create_refuses_a_bad_or_taken_email(cli: Any, settings: Settings) -> None:
    bad = cli("users", "create", "--email", "not an email", "--password", "Secret-Passw0rd")
    assert (bad.code, bad.err) == (1, "error: --email is not an e-mail address (email.invalid)\n")
    assert cli("users", "create", "--email", "a@example.com", "--password", "Secret-Passw0rd").code == 0
    taken = cli("users", "create", "--email", "a@example.com", "--password", "Other-Passw0rd")
    assert (taken.code, taken.out, taken.err) == (1, "", "error: email.taken\n")
    assert query(settings, lambda s: s.users.count()) == 1


# --- api keys ---------------------------------------------------------------------------------------


def create_user(cli: Any, *extra: str) -> str:
    email = f"u{uuid.uuid4().hex[:8]}@example.com"
    result = cli("users", "create", "--email", email, "--password", "Secret-Passw0rd", *extra)
    assert result.code == 0, result.err
    return str(result.out.strip())


def test_api_keys_create_prints_kid_and_secret_once(
    cli: Any, settings: Settings, announcements: Callable[[], list[str]]
) -> None:
    uid = create_user(cli, "--otp-secret", new_secret())
    result = cli("api-keys", "create", "--uid", uid, "--algorithm", "HS512")
    assert result.code == 0, result.err
    [line] = result.out.splitlines()
    printed = orjson.loads(line)
    assert set(printed) == {"kid", "secret", "algorithm"}
    assert re.fullmatch(r"[0-9a-f]{16}", printed["kid"]) and re.fullmatch(r"[0-9a-f]{32}", printed["secret"])
    assert printed["algorithm"] == "HS512"

    async def look(services: Services) -> tuple[Any, str]:
        key = await services.api_keys.get(printed["kid"])
        async with services.engine.connect() as conn:
            stored = (await conn.execute(select(api_keys.c.secret_encrypted))).scalar_one()
        return key, stored

    key, stored = query(settings, look)
    assert key is not None and key.secret == printed["secret"] and key.active
    assert printed["secret"] not in stored  # encrypted at rest
    assert f"apikey:{printed['kid']}" in announcements()


@pytest.mark.parametrize(
    ("user_options", "message"),
    [
        (None, "no user with uid IDFFFFFFFFFF"),
        (["--state", "banned", "--otp-secret", "JBSWY3DPEHPK3PXP"], "key_holder_account.invalid"),
        ([], "the key holder must have 2FA enabled (resource.api_key.2fa_disabled)"),
    ],
)
def test_api_keys_create_refuses_holders_that_could_not_use_it(
    cli: Any, settings: Settings, user_options: list[str] | None, message: str
) -> None:
    uid = "IDFFFFFFFFFF" if user_options is None else create_user(cli, *user_options)
    result = cli("api-keys", "create", "--uid", uid)
    assert (result.code, result.out) == (1, "")
    assert message in result.err

    async def count(services: Services) -> int:
        async with services.engine.connect() as conn:
            return len((await conn.execute(select(api_keys.c.id))).all())

    assert query(settings, count) == 0


# --- permissions ------------------------------------------------------------------------------------


def test_permissions_export_prints_yaml_that_imports_back(
    cli: Any, settings: Settings, tmp_path: Path
) -> None:
    create_user(cli)  # seeds the default permissions
    exported = cli("permissions", "export")
    assert exported.code == 0
    assert exported.out.startswith(
        "permissions:\n  - {role: superadmin, verb: ALL, path: api/v2, action: ACCEPT}\n"
    )
    assert rows(parse_permissions(exported.out)) == rows(parse_permissions(DEFAULT_PERMISSIONS.read_text()))
    (tmp_path / "exported.yml").write_text(exported.out)
    assert cli("permissions", "import", "--replace", str(tmp_path / "exported.yml")).code == 0
    assert cli("permissions", "export").out == exported.out


def test_permissions_import_is_idempotent(
    cli: Any, settings: Settings, tmp_path: Path, announcements: Callable[[], list[str]]
) -> None:
    path = tmp_path / "policy.yml"
    path.write_text(
        SMALL_POLICY + "  - { role: member, verb: get, path: api/v2/peatio/public, action: accept }\n"
    )
    assert cli("permissions", "import", str(path)) == Result(0, "added 3 permission(s)\n", "")
    assert announcements() == ["permissions"]
    assert cli("permissions", "import", str(path)) == Result(0, "added 0 permission(s)\n", "")
    stored = query(settings, lambda s: s.permissions.list_all())
    assert rows(stored) == rows(parse_permissions(SMALL_POLICY))


def test_permissions_import_adds_to_and_replace_replaces_what_is_stored(
    cli: Any, settings: Settings, tmp_path: Path
) -> None:
    create_user(cli)  # seeds the defaults
    defaults = rows(parse_permissions(DEFAULT_PERMISSIONS.read_text()))
    path = tmp_path / "policy.yml"
    path.write_text(SMALL_POLICY)
    assert (
        cli("permissions", "import", str(path)).out == "added 2 permission(s)\n"
    )  # the AUDIT row is a default
    added = [row for row in rows(parse_permissions(SMALL_POLICY)) if row not in defaults]
    assert rows(query(settings, lambda s: s.permissions.list_all())) == defaults + added

    # The file keeps a superadmin able to repair the permissions (authz/superadmin_access.py).
    replacement = SMALL_POLICY + "  - { role: superadmin, verb: ALL, path: api/v2/admin, action: ACCEPT }\n"
    path.write_text(replacement)
    assert cli("permissions", "import", "--replace", str(path)).out == "replaced with 4 permission(s)\n"
    assert rows(query(settings, lambda s: s.permissions.list_all())) == rows(parse_permissions(replacement))


def test_permissions_import_refuses_an_invalid_file_and_changes_nothing(
    cli: Any, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "policy.yml"
    path.write_text(SMALL_POLICY)
    cli("permissions", "import", str(path))
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "permissions:\n  - { role: member, verb: FETCH, path: api/v2, action: ACCEPT }\n  - { role: x }\n"
    )
    result = cli("permissions", "import", "--replace", str(bad))
    assert (result.code, result.out) == (1, "")
    assert "permissions[0].verb: 'FETCH' is not one of" in result.err
    assert "permissions[1].verb: missing" in result.err and "permissions[1].path: missing" in result.err
    missing = cli("permissions", "import", str(tmp_path / "missing.yml"))
    assert missing.code == 1 and "cannot read" in missing.err
    (tmp_path / "binary.yml").write_bytes(b"\xff\xfe\x00")
    binary = cli("permissions", "import", str(tmp_path / "binary.yml"))
    assert binary.code == 1 and "not UTF-8" in binary.err
    assert rows(query(settings, lambda s: s.permissions.list_all())) == rows(parse_permissions(SMALL_POLICY))


# --- restrictions -----------------------------------------------------------------------------------

RESTRICTION = "admin.restriction"  # the admin API's keys: the command goes through the same service


def test_restrictions_add_list_remove(
    cli: Any, settings: Settings, announcements: Callable[[], list[str]]
) -> None:
    first = cli("restrictions", "add", "--category", "blacklist", "--scope", "ip", "--value", "2001:DB8::0:1")
    assert first.code == 0, first.err
    assert announcements() == ["restrictions"]
    second = cli("restrictions", "add", "--category", "Maintenance", "--scope", "all", "--value", "all")
    third = cli(
        "restrictions", "add", "--category", "blacklist", "--scope", "country", "--value", "FR",
        "--code", "451", "--state", "disabled",
    )  # fmt: skip
    ids = [int(r.out) for r in (first, second, third)]
    listed = cli("restrictions", "list")
    assert listed.out.splitlines() == [
        f"{ids[0]}\tblacklist\tip\t2001:db8::1\t401\tenabled",
        f"{ids[1]}\tmaintenance\tall\tall\t471\tenabled",
        f"{ids[2]}\tblacklist\tcountry\tFR\t451\tdisabled",
    ]

    assert cli("restrictions", "remove", str(ids[0])) == Result(0, f"removed restriction {ids[0]}\n", "")
    assert announcements() == ["restrictions"] * 3  # the two other additions and the removal
    again = cli("restrictions", "remove", str(ids[0]))
    assert (again.code, again.err) == (1, "error: admin.restriction.doesnt_exist\n")
    stored = query(settings, lambda s: s.restrictions.list_all())
    assert [r.id for r in stored] == ids[1:]


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("options", "keys"),
    [
        (["--category", "grey", "--scope", "ip", "--value", "1.2.3.4"], f"{RESTRICTION}.invalid_category"),
        (["--category", "blacklist", "--scope", "city", "--value", "Paris"], f"{RESTRICTION}.invalid_scope"),
        (["--category", "blacklist", "--scope", "ip", "--value", "1.2.3.999"], "value.invalid"),
        (["--category", "blacklist", "--scope", "ip_subnet", "--value", "10.0.0.0/40"], "value.invalid"),
        (["--category", "blacklist", "--scope", "ip", "--value", " "], f"{RESTRICTION}.empty_value"),
        (["--category", "blacklist", "--scope", "ip", "--value", "1.2.3.4", "--code", "99"], "code.invalid"),
        (
            ["--category", "blacklist", "--scope", "ip", "--value", "1.2.3.4", "--state", "on"],
            f"{RESTRICTION}.invalid_state",
        ),
        (
            ["--category", "x", "--scope", "y", "--value", ""],
            f"{RESTRICTION}.empty_value, {RESTRICTION}.invalid_scope, {RESTRICTION}.invalid_category",
        ),
    ],
)
def test_restrictions_add_reports_validation_errors(
    cli: Any, settings: Settings, options: list[str], keys: str
) -> None:
    result = cli("restrictions", "add", *options)
    assert (result.code, result.out, result.err) == (1, "", f"error: {keys}\n")
    assert query(settings, lambda s: s.restrictions.list_all()) == []


def test_restrictions_add_refuses_a_duplicate(cli: Any) -> None:
    options = ["--category", "blacklist", "--scope", "ip_subnet", "--value", "10.1.2.3/16"]
    assert cli("restrictions", "add", *options).code == 0
    duplicate = cli("restrictions", "add", *options[:-1], "10.1.0.0/16")
    assert (duplicate.code, duplicate.err) == (1, "error: value.taken\n")


def test_restrictions_add_blocklogin_revokes_only_matching_sessions(cli: Any, settings: Settings) -> None:
    async def open_two(services: Services) -> tuple[str, str]:
        user = await services.users.create(email="blocked@example.com", password_digest="x", state="active")
        _, blocked = await services.sessions.create(user.uid, "10.1.2.3", "UA")
        _, kept = await services.sessions.create(user.uid, "192.0.2.7", "UA")
        return blocked.hash, kept.hash

    blocked, kept = query(settings, open_two)
    result = cli(
        "restrictions", "add", "--category", "blocklogin", "--scope", "ip_subnet", "--value", "10.1.0.0/16"
    )
    assert result.code == 0
    assert "revoked 1 session(s)" in result.err
    assert query(settings, lambda s: s.sessions.get(blocked)) is None
    assert query(settings, lambda s: s.sessions.get(kept)) is not None


# --- jwks and configuration -------------------------------------------------------------------------


@SQLITE_ONLY
def test_jwks_prints_the_generated_public_key(cli: Any, settings: Settings) -> None:
    result = cli("jwks")
    assert result.code == 0
    [key] = orjson.loads(result.out)["keys"]
    assert (key["kty"], key["use"], key["alg"]) == ("RSA", "sig", "RS256")
    assert {"n", "e", "kid"} <= set(key) and "d" not in key
    key_file = settings.data_dir / "jwt-private.pem"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert orjson.loads(cli("jwks").out)["keys"][0]["kid"] == key["kid"]  # the same key next time


@SQLITE_ONLY
def test_jwks_prints_the_configured_key(cli: Any, clean_env: pytest.MonkeyPatch, settings: Settings) -> None:
    from authz.keys import SigningKey

    clean_env.setenv("AUTHZ_JWT_PRIVATE_KEY", jwt_key_pem())
    [key] = orjson.loads(cli("jwks").out)["keys"]
    assert key["kid"] == SigningKey.from_pem(jwt_key_pem()).kid
    assert not (settings.data_dir / "jwt-private.pem").exists()


@SQLITE_ONLY
def test_invalid_configuration_exits_2_listing_every_problem(cli: Any, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AUTHZ_SESSION_EXPIRE_TIME", "soon")
    clean_env.setenv("REDIS_URL", "http://cache")
    result = cli("restrictions", "list")
    assert (result.code, result.out) == (2, "")
    assert "AUTHZ_SESSION_EXPIRE_TIME='soon'" in result.err and "REDIS_URL: must be" in result.err


@SQLITE_ONLY
def test_changes_are_written_even_when_redis_is_down(
    cli: Any, clean_env: pytest.MonkeyPatch, settings: Settings
) -> None:
    clean_env.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    clean_env.setenv("AUTHZ_REDIS_TIMEOUT", "0.2")
    result = cli("restrictions", "add", "--category", "blacklist", "--scope", "ip", "--value", "1.2.3.4")
    assert result.code == 0
    assert "Redis not reachable" in result.err
    assert [r.value for r in query(settings, lambda s: s.restrictions.list_all())] == ["1.2.3.4"]


def test_restrictions_whitelink_prints_a_token_that_lives_for_its_range(cli: Any, settings: Settings) -> None:
    from identity.whitelinks import RedisWhitelinkTokens

    result = cli("restrictions", "whitelink", "--expire-time", "2", "--range", "hour")
    assert result.code == 0, result.err
    token = result.out.strip()
    assert len(token) == 64

    async def lifetime(services: Services) -> tuple[bool, int]:
        active = await RedisWhitelinkTokens(services.redis, settings.redis_namespace).active(token)
        return active, await services.redis.ttl(f"{settings.redis_namespace}:whitelink:{token}")

    active, ttl = query(settings, lifetime)
    assert active and 7000 < ttl <= 7200
    refused = cli("restrictions", "whitelink", "--expire-time", "31")
    assert (refused.code, refused.out) == (1, "")
    assert "admin.restriction.invalid_expire" in refused.err
