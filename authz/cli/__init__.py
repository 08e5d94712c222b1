"""The ``authz`` command: serve, migrate, and administer users, service accounts, API keys, permissions and
restrictions.

The commands live beside this module: ``accounts`` (users, service accounts, API keys), ``policies``
(permissions, restrictions) and what they share in ``common``.  Every change goes through the same services
as the API (the admin services of ``authz/admin_api.py`` where the admin API has the same change) and is
announced on the change channel, so running instances apply it within a second.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from authz.cli import invites
from authz.cli.accounts import (
    cmd_api_keys_create,
    cmd_service_accounts_create,
    cmd_service_accounts_disable,
    cmd_service_accounts_list,
    cmd_users_create,
    cmd_users_set_role,
    cmd_users_set_state,
)
from authz.cli.common import CommandError
from authz.cli.keys import add_commands as add_key_commands
from authz.cli.policies import (
    cmd_permissions_add,
    cmd_permissions_export,
    cmd_permissions_import,
    cmd_permissions_list,
    cmd_permissions_remove,
    cmd_permissions_update,
    cmd_restrictions_add,
    cmd_restrictions_list,
    cmd_restrictions_remove,
    cmd_restrictions_update,
    cmd_restrictions_whitelink,
)
from authz.settings import Settings, SettingsError, load_settings
from authz.superadmin_access import EXPLANATION as LOCKOUT_EXPLANATION
from identity.errors import IdentityError, LastSuperadminAccess
from identity.models import API_KEY_ALGORITHMS
from identity.permissions_file import PermissionsFileError


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from authz.serve import serve

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


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="authz", description="Authorization sidecar and identity service")
    sub = root.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service (migrates and seeds first)")
    serve.add_argument("--host", help="address to listen on (default: AUTHZ_HOST, else 127.0.0.1)")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply migrations").set_defaults(func=cmd_db_upgrade)

    users = sub.add_parser("users", help="user accounts").add_subparsers(dest="users_command", required=True)
    create = users.add_parser("create", help="create a user; prints the uid")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--role", default="member")
    create.add_argument("--state", default="active")
    create.add_argument("--level", type=int, default=0)
    create.add_argument("--otp-secret", help="base32 TOTP secret: enables 2FA")
    create.set_defaults(func=cmd_users_create)
    set_role = users.add_parser("set-role", help="give a user a role that has permissions")
    set_role.add_argument("uid")
    set_role.add_argument("role")
    set_role.set_defaults(func=cmd_users_set_role)
    set_state = users.add_parser("set-state", help="set a user's state (pending, active, banned, deleted, locked)")
    set_state.add_argument("uid")
    set_state.add_argument("state")
    set_state.set_defaults(func=cmd_users_set_state)

    keys = sub.add_parser("api-keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    key_create = keys.add_parser("create", help="create a key; prints kid and secret (shown once)")
    key_create.add_argument("--uid", required=True, help="a user's uid, or a service account's (SI...)")
    key_create.add_argument("--algorithm", default="HS256", choices=API_KEY_ALGORITHMS)
    key_create.set_defaults(func=cmd_api_keys_create)

    accounts = sub.add_parser("service-accounts", help="service accounts (API keys only, no login)")
    sa = accounts.add_subparsers(dest="sa_command", required=True)
    sa_create = sa.add_parser("create", help="create a service account for a user; prints its uid")
    sa_create.add_argument("--owner", required=True, help="the owner's uid (level and state are copied)")
    sa_create.add_argument("--role", required=True, help="a role that has permissions")
    sa_create.add_argument("--email", help="default: <owner local part>+<uid>@<owner domain>")
    sa_create.set_defaults(func=cmd_service_accounts_create)
    sa_list = sa.add_parser("list", help="list service accounts: uid, email, role, level, state, owner uid")
    sa_list.add_argument("--owner", help="only those of this user")
    sa_list.set_defaults(func=cmd_service_accounts_list)
    sa_disable = sa.add_parser("disable", help="disable a service account and deactivate its keys")
    sa_disable.add_argument("uid")
    sa_disable.set_defaults(func=cmd_service_accounts_disable)

    permissions = sub.add_parser("permissions", help="permissions")
    perms = permissions.add_subparsers(dest="perm_command", required=True)
    perms.add_parser("list", help="list permissions: id, role, verb, path, action, topic").set_defaults(
        func=cmd_permissions_list
    )
    perm_add = perms.add_parser("add", help="add a permission for a role that has some; prints its id")
    _permission_options(perm_add, required=True)
    perm_add.set_defaults(func=cmd_permissions_add)
    perm_update = perms.add_parser("update", help="change fields of a permission by id")
    perm_update.add_argument("id")
    _permission_options(perm_update, required=False)
    perm_update.set_defaults(func=cmd_permissions_update)
    perm_remove = perms.add_parser("remove", help="remove a permission by id")
    perm_remove.add_argument("id")
    perm_remove.set_defaults(func=cmd_permissions_remove)
    imp = perms.add_parser("import", help="load permissions from a seeds.yml-shaped YAML file")
    imp.add_argument("file")
    imp.add_argument("--replace", action="store_true", help="delete every permission first")
    imp.set_defaults(func=cmd_permissions_import)
    perms.add_parser("export", help="print permissions as YAML").set_defaults(func=cmd_permissions_export)

    restrictions = sub.add_parser("restrictions", help="restrictions")
    restr = restrictions.add_subparsers(dest="restr_command", required=True)
    add = restr.add_parser("add", help="add a restriction; prints its id")
    _restriction_options(add, required=True)
    add.set_defaults(func=cmd_restrictions_add)
    listing = restr.add_parser("list", help="list restrictions: id, category, scope, value, code, state")
    listing.add_argument("--scope")
    listing.add_argument("--category")
    listing.set_defaults(func=cmd_restrictions_list)
    change = restr.add_parser("update", help="change fields of a restriction by id")
    change.add_argument("id")
    _restriction_options(change, required=False)
    change.set_defaults(func=cmd_restrictions_update)
    remove = restr.add_parser("remove", help="remove a restriction by id")
    remove.add_argument("id")
    remove.set_defaults(func=cmd_restrictions_remove)
    link = restr.add_parser("whitelink", help="create a whitelink token (for POST /identity/users/access)")
    link.add_argument("--expire-time", default="1", help="1 to 30 (default 1)")
    link.add_argument("--range", default="day", help="day or hour (default day)")
    link.set_defaults(func=cmd_restrictions_whitelink)

    invites.add_commands(sub)

    add_key_commands(sub)  # keys rotate, keys list, jwks
    return root


def _permission_options(command: argparse.ArgumentParser, *, required: bool) -> None:
    command.add_argument("--role", required=required, help="a role that has permissions already")
    command.add_argument("--verb", required=required, help="GET, POST, PUT, DELETE, PATCH, HEAD or ALL")
    command.add_argument("--path", required=required, help="a request path prefix, no leading /")
    command.add_argument("--action", required=required, help="ACCEPT, DROP or AUDIT")
    command.add_argument("--topic", help="the topic of an AUDIT permission's activities")


def _restriction_options(command: argparse.ArgumentParser, *, required: bool) -> None:
    categories = "whitelist, maintenance, blacklist or blocklogin"
    command.add_argument("--category", required=required, help=categories)
    command.add_argument("--scope", required=required, help="all, ip, ip_subnet, continent or country")
    command.add_argument("--value", required=required)
    command.add_argument("--code", help="the HTTP status of a denial (default: the scope's)")
    command.add_argument("--state", help="enabled (the default for a new one) or disabled")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        return int(args.func(settings, args))
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except PermissionsFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except LastSuperadminAccess as exc:
        print(f"error: {exc.keys[0]}: {LOCKOUT_EXPLANATION}", file=sys.stderr)
        return 1
    except IdentityError as exc:
        print(f"error: {', '.join(exc.keys)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

