"""First start: apply migrations and load the default policies into an empty database."""

from __future__ import annotations

import logging

from authz.services import Services
from authz.settings import Settings, async_database_url
from identity.migrate import upgrade
from identity.permissions_file import parse_permissions

log = logging.getLogger(__name__)

DEFAULT_PERMISSIONS_FILE = "permissions.yml"


def migrate(settings: Settings) -> None:
    """Bring the schema up to date (synchronous: call it before the event loop, or in a thread)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(async_database_url(settings.database_url))


async def seed_defaults(services: Services) -> int:
    """Load ``policies/permissions.yml`` when the permissions table is empty; returns rows added."""
    if await services.permissions.count():
        return 0
    path = services.settings.policies_dir / DEFAULT_PERMISSIONS_FILE
    perms = parse_permissions(path.read_text(), source=str(path))
    added = await services.permissions.add_many(perms)
    log.info("loaded %d default permissions from %s", added, path)
    return added
