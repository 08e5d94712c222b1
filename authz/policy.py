"""The policies the hot path reads: compiled permissions and restrictions, swapped atomically on change.

SQL is the store, Casbin the model: rows are loaded into Casbin enforcers (``policies/*.conf``) and the
enforcers' policies compiled into the indexes the decision reads.  A change message reloads one side; a
periodic reload is the backstop for changes made behind the service's back.
"""

from __future__ import annotations

import asyncio
import logging

from authz.authorizer import CompiledPermissions, build_permission_enforcer
from authz.restrictions import CompiledRestrictions, build_restriction_enforcer
from identity.permissions import SqlPermissionRepository
from identity.restrictions import SqlRestrictionRepository

log = logging.getLogger(__name__)


class PolicyState:
    """Holds the current compiled permissions and restrictions."""

    def __init__(self, permissions: SqlPermissionRepository, restrictions: SqlRestrictionRepository) -> None:
        self._permission_rows = permissions
        self._restriction_rows = restrictions
        self.permissions = CompiledPermissions.from_enforcer(build_permission_enforcer([]))
        self.restrictions = CompiledRestrictions.from_enforcer(build_restriction_enforcer([]))
        self.loaded = False
        self._lock = asyncio.Lock()

    async def reload_permissions(self) -> None:
        rows = await self._permission_rows.list_all()
        # Building a Casbin enforcer over thousands of rows takes a while: keep the loop serving meanwhile.
        compiled = await asyncio.to_thread(lambda: CompiledPermissions.from_enforcer(build_permission_enforcer(rows)))
        self.permissions = compiled

    async def reload_restrictions(self) -> None:
        rows = [row for row in await self._restriction_rows.list_all() if row.enabled]
        compiled = await asyncio.to_thread(
            lambda: CompiledRestrictions.from_enforcer(build_restriction_enforcer(rows))
        )
        self.restrictions = compiled

    async def reload(self) -> None:
        async with self._lock:
            await self.reload_permissions()
            await self.reload_restrictions()
            self.loaded = True

    async def refresh_forever(self, interval: float) -> None:
        """Reload every ``interval`` seconds; failures keep the last good policy (and are logged)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reload()
            except Exception as exc:  # noqa: BLE001 - any failure keeps the last good policy
                log.warning("periodic policy reload failed: %s", exc)
