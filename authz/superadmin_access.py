"""Whether a permissions table lets a superadmin repair it through the admin API.

The admin API (and the console, which calls it) and the ``authz`` command refuse a permission change after
which it would not: deleting or narrowing one ACCEPT row, or adding one DROP row, could otherwise lock every
superadmin out of the admin API, and only the command line could undo it.  What the repair needs is the admin
API's permission endpoints: ``GET``, ``POST``, ``PUT`` and ``DELETE`` on ``api/v2/barong/admin/permissions``,
each under either spelling the gateway routes to the service (``api/v2/admin/permissions`` too).

The answer is the decision endpoint's own: the proposed rows compiled as the policy reload compiles them
(:mod:`authz.authorizer`), asked about each request path as the pipeline asks, canonical
(:mod:`authz.canonical`).  Only the superadmin's rows can change a superadmin's verdict (the model matches
the role exactly), so only those are compiled.
"""

from __future__ import annotations

from collections.abc import Iterable

from authz.authorizer import CompiledPermissions, build_permission_enforcer
from authz.canonical import aliases, canonical_path
from identity.models import Permission

SUPERADMIN = "superadmin"
PERMISSIONS_PATH = "api/v2/barong/admin/permissions"
#: The admin API's permission endpoints: list, create, update, delete.
REPAIR_VERBS = ("GET", "POST", "PUT", "DELETE")
#: What the command line says when it refuses such a change.
EXPLANATION = (
    "after this change no superadmin could reach the admin API's permissions "
    f"({', '.join(REPAIR_VERBS)} {PERMISSIONS_PATH}); keep a superadmin ACCEPT row for them"
)


def superadmin_reaches_admin_api(rows: Iterable[Permission]) -> bool:
    """Whether the permissions ``rows`` (in table order) let a superadmin list, create, update and delete
    permissions through the admin API, under at least one spelling of its path for each verb."""
    own = [row for row in rows if row.role == SUPERADMIN]
    if not own:
        return False
    compiled = CompiledPermissions.from_enforcer(build_permission_enforcer(own))
    return all(
        any(
            compiled.decide(SUPERADMIN, verb, canonical_path(path)).allowed
            for path in aliases(PERMISSIONS_PATH)
        )
        for verb in REPAIR_VERBS
    )


__all__ = ["EXPLANATION", "PERMISSIONS_PATH", "REPAIR_VERBS", "SUPERADMIN", "superadmin_reaches_admin_api"]
