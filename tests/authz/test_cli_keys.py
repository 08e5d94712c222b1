"""``authz keys rotate``, ``authz keys list`` and ``authz jwks`` on the test's database and Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from tests.authz.test_cli import announcements, clean_env, cli  # noqa: F401 - the CLI tests' fixtures


def test_rotate_adds_an_active_key_publishes_both_and_announces_it(
    cli: Any, announcements: Callable[[], list[str]]  # noqa: F811
) -> None:
    listed = cli("keys", "list")
    assert listed.code == 0, listed.err
    (first,) = [line.split("\t") for line in listed.out.splitlines()]
    assert first[1:] == ["active", "-", "current"]

    rotated = cli("keys", "rotate", "--retire-after", "600")
    assert rotated.code == 0, rotated.err
    new_kid = rotated.out.split()[3]
    assert "signing_keys" in announcements()

    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in cli("keys", "list").out.splitlines()}
    assert rows[new_kid] == ["active", "-", "current"]
    assert rows[first[0]][0] == "retiring"
    published = orjson.loads(cli("jwks").out)
    assert {key["kid"] for key in published["keys"]} == {first[0], new_kid}


def test_rotate_refuses_a_bad_pem_file(cli: Any, tmp_path: Any) -> None:  # noqa: F811
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    result = cli("keys", "rotate", "--pem-file", str(bad))
    assert result.code == 1 and "--pem-file" in result.err
