"""First-start seeding of the default permissions."""

from __future__ import annotations

import asyncio
from typing import Any

from authz.bootstrap import seed_defaults
from authz.services import Services
from authz.settings import PROJECT_ROOT, Settings
from identity.models import Permission
from identity.permissions_file import parse_permissions

DEFAULTS = parse_permissions((PROJECT_ROOT / "policies" / "permissions.yml").read_text())


def rows(perms: list[Permission]) -> list[tuple[Any, ...]]:
    return [(p.role, p.verb, p.path, p.action, p.topic) for p in perms]


async def test_instances_starting_together_seed_the_defaults_once(settings: Settings) -> None:
    instances = [Services.open(settings, settings.redis_url) for _ in range(3)]
    try:
        added = await asyncio.gather(*(seed_defaults(services) for services in instances))
        assert sorted(added) == [0, 0, len(DEFAULTS)]
        assert rows(await instances[0].permissions.list_all()) == rows(DEFAULTS)
    finally:
        for services in instances:
            await services.close()


async def test_seeding_leaves_existing_permissions_alone(settings: Settings) -> None:
    services = Services.open(settings, settings.redis_url)
    try:
        own = [Permission(role="member", verb="GET", path="api/v2/x", action="ACCEPT")]
        await services.permissions.add_many(own)
        assert await seed_defaults(services) == 0
        assert rows(await services.permissions.list_all()) == rows(own)
    finally:
        await services.close()
