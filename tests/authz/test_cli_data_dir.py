"""Which data dir the ``authz`` command uses, and that it does not start a new embedded database by accident.

A command run from another directory used to create a new, empty ``./var`` there (its own SQLite file and
encryption key) and report success on a database no server used.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import authz
from authz.services import Services
from authz.settings import Settings, load_settings
from identity.models import User
from tests.authz.test_cli import clean_env, command_runner  # noqa: F401 - clean_env: the CLI tests' fixture
from tests.identity.helpers import cheap_argon2

EMAIL = "ops@example.com"
CREATE_USER = ["users", "create", "--email", EMAIL, "--password", "Secret-Passw0rd"]


@pytest.fixture
def cli(clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    """``cli(...)`` runs the command in an empty working directory with no ``AUTHZ_*`` settings at all:
    the embedded defaults (SQLite in the data dir), as on an operator's machine."""
    cheap_argon2(clean_env)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clean_env.chdir(elsewhere)
    return command_runner(capsys)


def user_in(data_dir: Path, redis_url: str) -> User | None:
    """The user stored in the embedded database of ``data_dir``, read with the server's repositories."""
    settings: Settings = load_settings(env={}, data_dir=data_dir)

    async def look() -> User | None:
        services = Services.open(settings, redis_url)
        try:
            credentials = await services.users.credentials(EMAIL)
            return credentials.user if credentials else None
        finally:
            await services.close()

    return asyncio.run(look())


def test_a_command_from_an_unrelated_directory_refuses_and_creates_nothing(tmp_path: Path) -> None:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    machine = ("DATABASE_URL", "REDIS_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHZ_") and k not in machine}
    env["PYTHONPATH"] = str(Path(authz.__file__).resolve().parents[1])  # this checkout, whatever is installed
    done = subprocess.run(
        [sys.executable, "-m", "authz.cli", *CREATE_USER],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    database = (cwd / "var" / "authz.sqlite3").resolve()
    refusal = f'error: no database at {database}; run "authz serve" or "authz db upgrade" first'
    assert done.stderr.startswith(refusal), done.stderr
    assert "--create" in done.stderr
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize("command", [CREATE_USER, ["jwks"], ["keys", "list"], ["permissions", "list"]])
def test_every_command_but_serve_and_db_upgrade_refuses_a_data_dir_without_a_database(
    cli: Any, tmp_path: Path, command: list[str]
) -> None:
    result = cli(*command, "--data-dir", str(tmp_path / "srv"))
    assert (result.code, result.out) == (1, "")
    assert result.err.startswith(f"error: no database at {(tmp_path / 'srv' / 'authz.sqlite3').resolve()};")
    assert not (tmp_path / "srv").exists()
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_data_dir_before_or_after_the_command_uses_the_servers_database(
    cli: Any, tmp_path: Path, redis_url: str
) -> None:
    srv = tmp_path / "srv"
    assert cli("db", "upgrade", "--data-dir", str(srv)).code == 0
    created = cli(*CREATE_USER, "--data-dir", str(srv))
    assert created.code == 0, created.err
    user = user_in(srv, redis_url)
    assert user is not None and user.uid == created.out.strip()
    taken = cli("--data-dir", str(srv), *CREATE_USER)  # the same database again, named before the command
    assert (taken.code, taken.err) == (1, "error: email.taken\n")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_the_flag_overrides_the_environment_and_both_find_the_same_database(
    cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str
) -> None:
    srv, other = tmp_path / "srv", tmp_path / "other"
    monkeypatch.setenv("AUTHZ_DATA_DIR", str(srv))
    assert cli("db", "upgrade").code == 0
    assert (srv / "authz.sqlite3").exists()
    refused = cli(*CREATE_USER, "--data-dir", str(other))  # the flag wins over AUTHZ_DATA_DIR
    assert refused.code == 1 and str(other.resolve()) in refused.err
    assert not other.exists()
    monkeypatch.delenv("AUTHZ_DATA_DIR")
    created = cli("--data-dir", str(srv), *CREATE_USER)
    assert created.code == 0, created.err
    monkeypatch.setenv("AUTHZ_DATA_DIR", str(srv))
    assert cli(*CREATE_USER).err == "error: email.taken\n"  # the environment names the same database
    user = user_in(srv, redis_url)
    assert user is not None and user.uid == created.out.strip()


def test_create_starts_a_new_database(cli: Any, tmp_path: Path, redis_url: str) -> None:
    srv = tmp_path / "srv"
    created = cli(*CREATE_USER, "--create", "--data-dir", str(srv))
    assert created.code == 0, created.err
    assert (srv / "authz.sqlite3").exists() and (srv / "encryption.key").exists()
    user = user_in(srv, redis_url)
    assert user is not None and user.uid == created.out.strip()


def test_a_configured_database_url_is_not_refused(
    cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    configured = tmp_path / "configured.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{configured}")
    created = cli(*CREATE_USER, "--data-dir", str(tmp_path / "srv"))
    assert created.code == 0, created.err
    assert configured.exists()
    assert not (tmp_path / "srv" / "authz.sqlite3").exists()
