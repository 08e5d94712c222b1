"""``authz invite-codes create | list``, run in-process against the test databases (fixtures of
``test_cli.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from authz.cli.errors import CommandError
from authz.cli.invites import expiry
from identity.invite_codes import SqlInviteCodeRepository
from tests.authz import test_cli
from tests.authz.test_cli import query

clean_env = test_cli.clean_env
cli = test_cli.cli


def test_create_prints_a_code_that_list_shows(cli: Any, settings: Any) -> None:
    created = cli("invite-codes", "create", "--uses", "3", "--expires", "7d")
    assert created.code == 0, created.err
    code = created.out.strip()
    assert 3 <= len(code) <= 16
    stored = query(settings, lambda services: SqlInviteCodeRepository(services.engine).get(code))
    assert stored.max_uses == 3 and stored.created_by == "cli"
    expires = stored.expires_at if stored.expires_at.tzinfo else stored.expires_at.replace(tzinfo=UTC)
    assert abs(expires - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)
    listed = cli("invite-codes", "list")
    assert listed.code == 0
    assert listed.out.startswith(f"{code}\t0+0/3\t")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_chosen_code_and_its_problems(cli: Any) -> None:
    assert cli("invite-codes", "create", "--code", "friends-2026").out.strip() == "friends-2026"
    taken = cli("invite-codes", "create", "--code", "friends-2026")
    assert (taken.code, taken.err.strip()) == (1, "error: invite_code.code.taken")
    assert cli("invite-codes", "create", "--code", "no spaces").code == 1
    assert cli("invite-codes", "create", "--uses", "0").code == 1
    past = cli("invite-codes", "create", "--expires", "2020-01-01")
    assert (past.code, past.err.strip()) == (1, "error: invite_code.expires_at.in_the_past")
    assert "give a duration" in cli("invite-codes", "create", "--expires", "soon").err


def test_expiry_forms() -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert expiry(None, now) is None and expiry("never", now) is None
    assert expiry("12h", now) == now + timedelta(hours=12)
    assert expiry("90m", now) == now + timedelta(minutes=90)
    assert expiry("2027-01-01", now) == datetime(2027, 1, 1, tzinfo=UTC)
    assert expiry("2027-01-01T10:00:00+02:00", now) == datetime(2027, 1, 1, 8, 0, tzinfo=UTC)
    with pytest.raises(CommandError):
        expiry("0d", now)
