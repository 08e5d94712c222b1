"""The policies the hot path reads: compiled permissions and restrictions, swapped atomically on change.

SQL is the store, Casbin the model: rows are loaded into Casbin enforcers (``policies/*.conf``) and the
enforcers' policies compiled into the indexes the decision reads.  A change message reloads one side; a
periodic reload is the backstop for changes made behind the service's back.
"""

from __future__ import annotations

import asyncio
import logging

from authz.authorizer import CompiledPermissions, build_permission_enforcer
from authz.canonical import canonical_path
from authz.restrictions import CompiledRestrictions, build_restriction_enforcer
from identity.permissions import SqlPermissionRepository
from identity.restrictions import SqlRestrictionRepository

log = logging.getLogger(__name__)

#: Seconds before a failed reload is tried again (doubling while it keeps failing, up to the refresh interval).
RETRY_FIRST = 0.5


class PolicyState:
    """Holds the current compiled permissions and restrictions."""

    def __init__(self, permissions: SqlPermissionRepository, restrictions: SqlRestrictionRepository) -> None:
        self._permission_rows = permissions
        self._restriction_rows = restrictions
        self.permissions = CompiledPermissions.from_enforcer(build_permission_enforcer([]))
        self.restrictions = CompiledRestrictions.from_enforcer(build_restriction_enforcer([]))
        self.loaded = False
        # Reloads run one at a time, so an older read can never replace a newer one.
        self._lock = asyncio.Lock()
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._stopped = False

    def permits(self, role: str, method: str, path: str) -> bool:
        """The current table's verdict on ``role`` calling ``method path`` (no leading slash, either
        spelling): the check the service's own APIs make of their own requests, as the decision does."""
        return self.permissions.decide(role, method, canonical_path(path)).allowed

    async def reload_permissions(self) -> None:
        async with self._lock:
            rows = await self._permission_rows.list_all()
            # Building a Casbin enforcer over thousands of rows takes a while: the loop keeps serving.
            self.permissions = await asyncio.to_thread(
                lambda: CompiledPermissions.from_enforcer(build_permission_enforcer(rows))
            )

    async def reload_restrictions(self) -> None:
        async with self._lock:
            rows = [row for row in await self._restriction_rows.list_all() if row.enabled]
            self.restrictions = await asyncio.to_thread(
                lambda: CompiledRestrictions.from_enforcer(build_restriction_enforcer(rows))
            )

    async def reload(self) -> None:
        await self.reload_permissions()
        await self.reload_restrictions()
        self.loaded = True

    def schedule(self, what: str = "all") -> None:
        """Ask for a reload of ``permissions``, ``restrictions`` or ``all`` (done by :meth:`run`).

        The change listener calls this instead of awaiting a reload, so a slow database never delays the
        delivery of the next invalidation; requests made while a reload runs are folded into the next one.
        """
        self._dirty.add(what)
        self._wake.set()

    async def run(self, refresh_interval: float) -> None:
        """Perform the requested reloads, and a full one every ``refresh_interval`` seconds.

        A reload is never cancelled half-way (that would strand its database connection); :meth:`stop`
        lets the current one finish and ends the loop.
        """
        retry = RETRY_FIRST
        while not self._stopped:
            retrying = bool(self._dirty)  # a failed reload is retried, sooner than the periodic one
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=retry if retrying else refresh_interval)
            except TimeoutError:
                if not retrying:
                    self._dirty.add("all")
            self._wake.clear()
            if self._stopped:
                return
            dirty, self._dirty = self._dirty, set()
            try:
                if "all" in dirty or {"permissions", "restrictions"} <= dirty:
                    await self.reload()
                elif "permissions" in dirty:
                    await self.reload_permissions()
                elif "restrictions" in dirty:
                    await self.reload_restrictions()
            except Exception as exc:  # noqa: BLE001 - the last good policy stays until a retry succeeds
                # Without the retry this instance would decide from the old policy until the next change or
                # the periodic reload, while the others already apply the change.
                self._dirty |= dirty
                if retrying:
                    retry = min(retry * 2, refresh_interval)
                log.warning(
                    "reloading %s failed (retried in %.1f s): %s", ", ".join(sorted(dirty)), retry, exc
                )
            else:
                retry = RETRY_FIRST

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
