"""Commands that run the service: ``authz serve`` and ``authz db upgrade``."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from authz.settings import Settings


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from authz.serve import serve  # the aiohttp server and gRPC: for this command only

    changes: dict[str, Any] = {}
    if args.host:
        changes["host"] = args.host
    if args.port:
        changes["port"] = args.port
    if args.workers:
        changes["workers"] = args.workers
    return serve(replace(settings, **changes))


def cmd_db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    from authz.bootstrap import migrate

    migrate(settings)
    print("database is up to date")
    return 0
