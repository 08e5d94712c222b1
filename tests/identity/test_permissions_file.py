"""The permissions file read and written by ``authz permissions import/export``."""

from __future__ import annotations

from pathlib import Path

import pytest

from identity.models import Permission
from identity.permissions_file import PermissionsFileError, dump_permissions, parse_permissions

POLICY_FILE = Path(__file__).resolve().parents[2] / "policies" / "permissions.yml"


def test_real_permissions_file_round_trips():
    perms = parse_permissions(POLICY_FILE.read_text(), str(POLICY_FILE))
    assert len(perms) == 187  # Barong's 177 defaults and one token-API row for each role that logs in
    assert perms[0] == Permission(role="superadmin", verb="ALL", path="api/v2", action="ACCEPT")
    assert parse_permissions(dump_permissions(perms)) == perms


def test_odd_values_round_trip():
    perms = [
        Permission(role="r: x", verb="GET", path='a,"b" #c', action="AUDIT", topic="it's"),
        Permission(role="yes", verb="ALL", path="[x]", action="DROP"),
        Permission(role="123", verb="PATCH", path="  spaced ", action="ACCEPT", topic="null"),
    ]
    assert parse_permissions(dump_permissions(perms)) == perms


def test_empty_list_round_trips():
    assert dump_permissions([]) == "permissions: []\n"
    assert parse_permissions(dump_permissions([])) == []
    assert parse_permissions("permissions:\n") == []


def test_barong_seeds_shape_is_accepted():
    text = """
levels:
  - { key: email, value: verified }
permissions:
  - { role: member, verb: get, path: api/v2/ranger, action: accept }
  - { role: admin, verb: Post, path: api/v2/, action: audit, topic: admin }
  - { role: admin, verb: all, path: api/v2, action: accept, topic: '' }
"""
    assert parse_permissions(text) == [
        Permission(role="member", verb="GET", path="api/v2/ranger", action="ACCEPT"),
        Permission(role="admin", verb="POST", path="api/v2/", action="AUDIT", topic="admin"),
        Permission(role="admin", verb="ALL", path="api/v2", action="ACCEPT"),
    ]


def test_every_problem_is_reported_at_once():
    text = """
permissions:
  - { role: member, verb: get, path: api/v2/ranger, action: accept }
  - { role: ' ', verb: FETCH, path: api/v2, action: allow }
  - { verb: GET, path: '', action: DROP, topic: 3 }
  - just a string
  - { role: member, verb: GET, path: api/v2, action: ACCEPT, acton: DROP }
  - { role: [a], verb: 1, path: api/v2, action: ACCEPT }
"""
    with pytest.raises(PermissionsFileError) as caught:
        parse_permissions(text, "perms.yml")
    assert caught.value.problems == [
        "permissions[1].role: must not be blank",
        "permissions[1].verb: 'FETCH' is not one of GET, POST, DELETE, PUT, HEAD, PATCH, ALL",
        "permissions[1].action: 'allow' is not one of ACCEPT, DROP, AUDIT",
        "permissions[2].role: missing",
        "permissions[2].path: must not be blank",
        "permissions[2].topic: must be a string, not 3",
        "permissions[3]: must be a mapping with role, verb, path, action (and topic)",
        "permissions[4]: unknown key 'acton' (expected role, verb, path, action, topic)",
        "permissions[5].role: must be a string, not ['a']",
        "permissions[5].verb: must be a string, not 1",
    ]
    assert str(caught.value).startswith("perms.yml: invalid permissions file:")
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("permissions: [a: b\n", "invalid YAML"),
        ("", "expected a top-level key 'permissions'"),
        ("- role: member\n", "expected a top-level key 'permissions'"),
        ("permissions: {role: member}\n", "permissions: must be a list of mappings"),
    ],
)
def test_malformed_documents(text, problem):
    with pytest.raises(PermissionsFileError) as caught:
        parse_permissions(text)
    assert problem in caught.value.problems[0]
