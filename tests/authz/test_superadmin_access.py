"""Whether a permissions table lets a superadmin repair it through the admin API (``authz/superadmin_access.py``),
over the shipped ``policies/permissions.yml`` and small tables beside it."""

from __future__ import annotations

import pytest

from authz.settings import PROJECT_ROOT
from authz.superadmin_access import superadmin_reaches_admin_api
from identity.models import Permission
from identity.permissions_file import parse_permissions

DEFAULTS = parse_permissions((PROJECT_ROOT / "policies" / "permissions.yml").read_text())


def row(role: str, verb: str, path: str, action: str) -> Permission:
    return Permission(role, verb, path, action)


def superadmin(verb: str, path: str, action: str = "ACCEPT") -> Permission:
    return row("superadmin", verb, path, action)


@pytest.mark.parametrize(
    ("table", "reaches"),
    [
        (DEFAULTS, True),
        ([], False),
        ([p for p in DEFAULTS if p.role != "superadmin"], False),
        # Either spelling of the admin API grants it (the decision matches canonical paths).
        ([superadmin("ALL", "api/v2/admin/permissions")], True),
        ([superadmin("ALL", "api/v2/barong/admin/permissions")], True),
        ([superadmin(verb, "api/v2/admin") for verb in ("GET", "POST", "PUT", "DELETE")], True),
        ([superadmin("GET", "api/v2/barong/admin")], False),  # reading alone repairs nothing
        ([superadmin("ALL", "api/v2", "AUDIT")], False),  # AUDIT never allows
        ([*DEFAULTS, superadmin("DELETE", "api/v2/admin", "DROP")], False),  # a DROP in the other spelling
        ([*DEFAULTS, superadmin("ALL", "api/v2/barong/admin/permissions", "DROP")], False),
        ([*DEFAULTS, superadmin("ALL", "api/v2/barong/admin/users", "DROP")], True),
        ([*DEFAULTS, superadmin("ALL", "api/v2/barong/admin/permissions/x", "DROP")], True),
        ([*DEFAULTS, row("admin", "ALL", "api/v2", "DROP")], True),  # other roles' rows change nothing
        ([row("admin", "ALL", "api/v2", "ACCEPT")], False),
    ],
)
def test_a_superadmin_reaches_the_admin_apis_permissions(table: list[Permission], reaches: bool) -> None:
    assert superadmin_reaches_admin_api(table) is reaches
