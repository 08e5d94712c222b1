"""First start: apply migrations and load the default policies into an empty database."""

from __future__ import annotations

import logging

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from authz.services import Services
from authz.settings import Settings, async_database_url
from identity.db import permissions
from identity.migrate import upgrade
from identity.models import Permission
from identity.permissions import permission_rows
from identity.permissions_file import parse_permissions

log = logging.getLogger(__name__)

DEFAULT_PERMISSIONS_FILE = "permissions.yml"
#: PostgreSQL advisory lock id that serialises first-start seeding ("authz" in ASCII).
SEED_LOCK = 0x617574687A


def migrate(settings: Settings) -> None:
    """Bring the schema up to date (synchronous: call it before the event loop, or in a thread)."""
    # Private: it may hold the SQLite database (password hashes), keys and Redis' files.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    upgrade(async_database_url(settings.database_url))


async def seed_defaults(services: Services) -> int:
    """Load ``policies/permissions.yml`` when the permissions table is empty; returns rows added."""
    path = services.settings.policies_dir / DEFAULT_PERMISSIONS_FILE
    perms = parse_permissions(path.read_text(), source=str(path))
    added = await _insert_if_empty(services.engine, perms)
    if added:
        log.info("loaded %d default permissions from %s", added, path)
    return added


async def _insert_if_empty(engine: AsyncEngine, perms: list[Permission]) -> int:
    # Instances starting together on one fresh database must seed once, not once each: the emptiness
    # check and the insert run in one transaction that holds the database's write lock (SQLite) or an
    # advisory lock (PostgreSQL) from the start, so the second instance finds the rows of the first.
    async with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEED_LOCK})
        if await conn.scalar(select(func.count()).select_from(permissions)):
            await conn.rollback()
            return 0
        rows = permission_rows(perms)
        if rows:
            await conn.execute(permissions.insert(), rows)
        await conn.commit()
    return len(rows)
