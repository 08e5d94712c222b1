"""Commands on permissions and restrictions, through the admin services the API uses."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from authz.admin_services import AdminServices
from authz.cli.common import every, given, with_admin, with_services
from authz.cli.errors import CommandError
from authz.services import Services
from authz.settings import Settings
from identity.admin.actor import Actor
from identity.admin.restrictions import SavedRestriction
from identity.models import Permission, Restriction
from identity.paging import Page
from identity.permissions_file import dump_permissions, parse_permissions


def cmd_permissions_import(settings: Settings, args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        perms = parse_permissions(path.read_text(), source=str(path))
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CommandError(f"cannot read {path}: not UTF-8 text") from None

    async def body(admin: AdminServices) -> int:
        added = await admin.permissions.import_rows(perms, replace_all=args.replace)
        print(f"{'replaced with' if args.replace else 'added'} {added} permission(s)")
        return 0

    return with_admin(settings, body)


def cmd_permissions_export(settings: Settings, _args: argparse.Namespace) -> int:
    async def body(services: Services) -> int:
        sys.stdout.write(dump_permissions(await services.permissions.list_all()))
        return 0

    return with_services(settings, body)


def cmd_permissions_list(settings: Settings, _args: argparse.Namespace) -> int:
    async def body(admin: AdminServices) -> int:
        for p in await every(lambda page: admin.permissions.list(page)):
            print(_permission_line(p))
        return 0

    return with_admin(settings, body)


def cmd_permissions_add(settings: Settings, args: argparse.Namespace) -> int:
    params = given(args, "role", "verb", "path", "action", "topic")

    async def body(admin: AdminServices) -> int:
        print((await admin.permissions.create(Actor.cli(), params)).id)
        return 0

    return with_admin(settings, body)


def cmd_permissions_update(settings: Settings, args: argparse.Namespace) -> int:
    params = given(args, "role", "verb", "path", "action", "topic")

    async def body(admin: AdminServices) -> int:
        print(_permission_line(await admin.permissions.update(Actor.cli(), args.id, params)))
        return 0

    return with_admin(settings, body)


def cmd_permissions_remove(settings: Settings, args: argparse.Namespace) -> int:
    async def body(admin: AdminServices) -> int:
        removed = await admin.permissions.delete(Actor.cli(), args.id)
        print(f"removed permission {removed.id}")
        return 0

    return with_admin(settings, body)


def _permission_line(p: Permission) -> str:
    return f"{p.id}\t{p.role}\t{p.verb}\t{p.path}\t{p.action}\t{p.topic or '-'}"


def cmd_restrictions_add(settings: Settings, args: argparse.Namespace) -> int:
    params = given(args, "category", "scope", "value", "code", "state")

    async def body(admin: AdminServices) -> int:
        saved = await admin.restrictions.create(Actor.cli(), params)
        print(saved.restriction.id)
        _report_revoked(saved)
        return 0

    return with_admin(settings, body)


def cmd_restrictions_list(settings: Settings, args: argparse.Namespace) -> int:
    filters = given(args, "scope", "category")

    async def body(admin: AdminServices) -> int:
        async def page(number: Page) -> tuple[list[Restriction], int]:
            found, total, _ = await admin.restrictions.list(
                {**filters, "page": number.page, "limit": number.limit}
            )
            return found, total

        for r in await every(page):
            print(_restriction_line(r))
        return 0

    return with_admin(settings, body)


def cmd_restrictions_update(settings: Settings, args: argparse.Namespace) -> int:
    params = given(args, "category", "scope", "value", "code", "state")

    async def body(admin: AdminServices) -> int:
        saved = await admin.restrictions.update(Actor.cli(), args.id, params)
        print(_restriction_line(saved.restriction))
        _report_revoked(saved)
        return 0

    return with_admin(settings, body)


def cmd_restrictions_remove(settings: Settings, args: argparse.Namespace) -> int:
    async def body(admin: AdminServices) -> int:
        removed = await admin.restrictions.delete(Actor.cli(), args.id)
        print(f"removed restriction {removed.id}")
        return 0

    return with_admin(settings, body)


def cmd_restrictions_whitelink(settings: Settings, args: argparse.Namespace) -> int:
    """Barong's ``POST /admin/restrictions/whitelink``: a token valid for 1–30 days or hours."""
    params = {"expire_time": args.expire_time, "range": args.range}

    async def body(admin: AdminServices) -> int:
        print(await admin.restrictions.whitelink(Actor.cli(), params))
        return 0

    return with_admin(settings, body)


def _restriction_line(r: Restriction) -> str:
    return f"{r.id}\t{r.category}\t{r.scope}\t{r.value}\t{r.code}\t{r.state}"


def _report_revoked(saved: SavedRestriction) -> None:
    if saved.restriction.category == "blocklogin" and saved.restriction.enabled:
        print(f"revoked {saved.revoked_sessions} session(s) opened from blocked addresses", file=sys.stderr)

