"""What the commands share: opening the services, the admin services, and telling the operator."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from authz.admin_services import AdminServices, admin_services
from authz.embedded_redis import _answers, socket_path
from authz.geoip import GeoIP
from authz.services import Services
from authz.settings import Settings
from identity.changes import ChangePublisher
from identity.errors import StorageUnavailable
from identity.paging import MAX_LIMIT, Page


def _redis_url(settings: Settings) -> str | None:
    if settings.redis_url:
        return settings.redis_url
    path = socket_path(settings.data_dir)
    return f"unix://{path}" if _answers(path) else None


def with_services(settings: Settings, body: Callable[[Services], Awaitable[int]]) -> int:
    from authz.bootstrap import migrate

    migrate(settings)
    # Without a reachable Redis no instance can be running on the embedded default; the DB write still
    # happens, and instances on a shared Redis pick it up at their periodic reload.
    url = _redis_url(settings) or "unix:///nonexistent/authz-no-redis.sock"

    async def run() -> int:
        services = Services.open(settings, url)
        try:
            return await body(services)
        finally:
            await services.close()

    return asyncio.run(run())


async def announce(services: Services, publish: Callable[[], Awaitable[None]]) -> None:
    try:
        await publish()
    except StorageUnavailable:
        print("note: Redis not reachable; running instances apply the change at their next reload", file=sys.stderr)


class _NotingChanges(ChangePublisher):
    """The commands' change announcements: without Redis the change is still made (running instances apply
    it at their periodic reload) and the operator is told so."""

    async def publish(self, *messages: str) -> None:
        try:
            await super().publish(*messages)
        except StorageUnavailable:
            note = "note: Redis not reachable; running instances apply the change at their next reload"
            print(note, file=sys.stderr)


def with_admin(settings: Settings, body: Callable[[AdminServices], Awaitable[int]]) -> int:
    """Run ``body`` with the admin services the API uses (the same validation, activities, announcements)."""

    async def run(services: Services) -> int:
        geoip = GeoIP.open(settings.geoip_db)  # a blocklogin restriction revokes sessions by location too
        try:
            noting = replace(services, changes=_NotingChanges(services.redis, settings.redis_namespace))
            return await body(admin_services(settings, noting, geoip))
        finally:
            geoip.close()

    return with_services(settings, run)


def given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The options given on the command line, as the admin API's parameters."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


async def every(page: Callable[[Page], Awaitable[tuple[list[Any], int]]]) -> list[Any]:
    """Every row of a paginated admin listing."""
    rows: list[Any] = []
    number = 1
    while True:
        found, total = await page(Page(number, MAX_LIMIT))
        rows.extend(found)
        if not found or len(rows) >= total:
            return rows
        number += 1

