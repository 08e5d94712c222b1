"""The ``authz`` command: serve, migrate, and administer users, service accounts, API keys, permissions,
restrictions, invite codes and the signing keys.

The commands live beside this module: ``service`` (serve, db), ``accounts`` (users, service accounts, API
keys), ``policies`` (permissions, restrictions), ``invites``, ``keys`` and what they share in ``common``.
This module only builds the argument tree and imports a command's module when that command runs, so
``--help`` and ``--version`` load none of the heavy libraries (SQLAlchemy, Redis, aiohttp, gRPC), and no
command but ``serve`` loads the aiohttp server or gRPC.  Every change goes through the same services as
the API (the admin services of ``authz/admin_services.py`` where the admin API has the same change) and is
announced on the change channel, so running instances apply it within a second.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from authz.cli.errors import CommandError
from authz.settings import Settings, SettingsError, embedded_database, load_settings
from identity.errors import IdentityError, LastSuperadminAccess
from identity.models import API_KEY_ALGORITHMS
from identity.permissions_file import PermissionsFileError

Command = Callable[[Settings, argparse.Namespace], int]


class _Version(argparse.Action):
    """``--version``: the installed package's version, looked up only when asked (importlib.metadata alone
    costs more than the rest of ``--help``)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from importlib.metadata import version

        print(f"{parser.prog} {version('authz')}")
        parser.exit()


DATA_DIR_HELP = (
    "the directory of the embedded SQLite database, keys and Redis (default: AUTHZ_DATA_DIR, else ./var); "
    "give the server's to change what it serves"
)
#: The commands that may create the embedded database; every other one refuses to start a new, empty one.
CREATING_TARGETS = ("service.cmd_serve", "service.cmd_db_upgrade")


def _runs(command: argparse.ArgumentParser, target: str) -> None:
    """``command`` runs ``target`` (``module.function`` in this package), imported when it runs.

    It takes ``--data-dir`` after its name too (``authz users create --data-dir D``), and a command that
    does not create the database takes ``--create`` to start a new one anyway.
    """
    command.set_defaults(target=target)
    command.add_argument("--data-dir", default=argparse.SUPPRESS, help=DATA_DIR_HELP)
    if target not in CREATING_TARGETS:
        creates = "start a new embedded database (and keys) if the data dir has none, instead of refusing"
        command.add_argument("--create", action="store_true", default=argparse.SUPPRESS, help=creates)


def _command(target: str) -> Command:
    module, name = target.rsplit(".", 1)
    found: Command = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    return found


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="authz",
        description="Authorization sidecar and identity service",
        epilog=(
            "Every command uses the data dir of --data-dir (before or after the command), else "
            "AUTHZ_DATA_DIR, else ./var, as the server does. With the embedded SQLite database (no "
            "DATABASE_URL), only 'serve' and 'db upgrade' create it; the other commands refuse a data dir "
            "without one unless given --create."
        ),
    )
    root.add_argument("--version", action=_Version, help="print the installed version and exit")
    root.add_argument("--data-dir", help=DATA_DIR_HELP)
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the service (migrates and seeds first)")
    serve.add_argument("--host", help="address to listen on (default: AUTHZ_HOST, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default: AUTHZ_PORT, else 8080)")
    serve.add_argument("--workers", type=int, help="worker processes (default: AUTHZ_WORKERS, else 1)")
    _runs(serve, "service.cmd_serve")

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    _runs(db.add_parser("upgrade", help="apply migrations"), "service.cmd_db_upgrade")

    users = sub.add_parser("users", help="user accounts").add_subparsers(dest="users_command", required=True)
    create = users.add_parser("create", help="create a user; prints the uid")
    create.add_argument("--email", required=True, help="the login e-mail address")
    create.add_argument("--password", required=True, help="the login password (stored as an argon2id hash)")
    create.add_argument("--role", default="member", help="a role that has permissions (default member)")
    create.add_argument(
        "--state", default="active", help="pending, active, banned, deleted or locked (default active)"
    )
    create.add_argument("--level", type=int, default=0, help="the account level, 0 or more (default 0)")
    create.add_argument("--otp-secret", help="base32 TOTP secret: enables 2FA")
    _runs(create, "accounts.cmd_users_create")
    set_role = users.add_parser("set-role", help="give a user a role that has permissions")
    set_role.add_argument("uid", help="the user's uid")
    set_role.add_argument("role", help="a role that has permissions")
    _runs(set_role, "accounts.cmd_users_set_role")
    set_state = users.add_parser("set-state", help="set a user's state")
    set_state.add_argument("uid", help="the user's uid")
    set_state.add_argument("state", help="pending, active, banned, deleted or locked")
    _runs(set_state, "accounts.cmd_users_set_state")

    keys = sub.add_parser("api-keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    key_create = keys.add_parser("create", help="create a key; prints kid and secret (shown once)")
    key_create.add_argument("--uid", required=True, help="a user's uid, or a service account's (SI...)")
    algorithms = "the HMAC that signs the requests (default HS256)"
    key_create.add_argument("--algorithm", default="HS256", choices=API_KEY_ALGORITHMS, help=algorithms)
    _runs(key_create, "accounts.cmd_api_keys_create")

    accounts = sub.add_parser("service-accounts", help="service accounts (API keys only, no login)")
    sa = accounts.add_subparsers(dest="sa_command", required=True)
    sa_create = sa.add_parser("create", help="create a service account for a user; prints its uid")
    sa_create.add_argument("--owner", required=True, help="the owner's uid (level and state are copied)")
    sa_create.add_argument("--role", required=True, help="a role that has permissions")
    sa_create.add_argument("--email", help="default: <owner local part>+<uid>@<owner domain>")
    _runs(sa_create, "accounts.cmd_service_accounts_create")
    sa_list = sa.add_parser("list", help="list service accounts: uid, email, role, level, state, owner uid")
    sa_list.add_argument("--owner", help="only those of this user")
    _runs(sa_list, "accounts.cmd_service_accounts_list")
    sa_disable = sa.add_parser("disable", help="disable a service account and deactivate its keys")
    sa_disable.add_argument("uid", help="the service account's uid (SI...)")
    _runs(sa_disable, "accounts.cmd_service_accounts_disable")

    permissions = sub.add_parser("permissions", help="permissions")
    perms = permissions.add_subparsers(dest="perm_command", required=True)
    perm_list = perms.add_parser("list", help="list permissions: id, role, verb, path, action, topic")
    _runs(perm_list, "policies.cmd_permissions_list")
    perm_add = perms.add_parser("add", help="add a permission for a role that has some; prints its id")
    _permission_options(perm_add, required=True)
    _runs(perm_add, "policies.cmd_permissions_add")
    perm_update = perms.add_parser("update", help="change fields of a permission by id")
    perm_update.add_argument("id", help="the permission's id")
    _permission_options(perm_update, required=False)
    _runs(perm_update, "policies.cmd_permissions_update")
    perm_remove = perms.add_parser("remove", help="remove a permission by id")
    perm_remove.add_argument("id", help="the permission's id")
    _runs(perm_remove, "policies.cmd_permissions_remove")
    imp = perms.add_parser("import", help="load permissions from a seeds.yml-shaped YAML file")
    imp.add_argument("file", help="a YAML file with a top-level 'permissions' list")
    imp.add_argument("--replace", action="store_true", help="delete every permission first")
    _runs(imp, "policies.cmd_permissions_import")
    _runs(perms.add_parser("export", help="print permissions as YAML"), "policies.cmd_permissions_export")

    restrictions = sub.add_parser("restrictions", help="restrictions")
    restr = restrictions.add_subparsers(dest="restr_command", required=True)
    add = restr.add_parser("add", help="add a restriction; prints its id")
    _restriction_options(add, required=True)
    _runs(add, "policies.cmd_restrictions_add")
    listing = restr.add_parser("list", help="list restrictions: id, category, scope, value, code, state")
    listing.add_argument("--scope", help="only those of this scope")
    listing.add_argument("--category", help="only those of this category")
    _runs(listing, "policies.cmd_restrictions_list")
    change = restr.add_parser("update", help="change fields of a restriction by id")
    change.add_argument("id", help="the restriction's id")
    _restriction_options(change, required=False)
    _runs(change, "policies.cmd_restrictions_update")
    remove = restr.add_parser("remove", help="remove a restriction by id")
    remove.add_argument("id", help="the restriction's id")
    _runs(remove, "policies.cmd_restrictions_remove")
    link = restr.add_parser("whitelink", help="create a whitelink token (for POST /identity/users/access)")
    link.add_argument("--expire-time", default="1", help="1 to 30 (default 1)")
    link.add_argument("--range", default="day", help="day or hour (default day)")
    _runs(link, "policies.cmd_restrictions_whitelink")

    invites = sub.add_parser("invite-codes", help="codes for sign-ups through the token API (/v1/user)")
    codes = invites.add_subparsers(dest="invite_command", required=True)
    code_create = codes.add_parser("create", help="create an invite code; prints it")
    code_create.add_argument("--uses", type=int, default=1, help="how many sign-ups may use it (default 1)")
    code_create.add_argument("--expires", help="30d, 12h, 90m, or an ISO date/time (default: never)")
    code_create.add_argument("--code", help="the code itself (3-16 of [0-9A-Za-z_-]; default: random)")
    _runs(code_create, "invites.cmd_invite_codes_create")
    code_list = codes.add_parser("list", help="list codes: code, uses confirmed+pending/max, expiry")
    _runs(code_list, "invites.cmd_invite_codes_list")

    keyring = sub.add_parser("keys", help="the JWT signing keyring")
    ring = keyring.add_subparsers(dest="keyring_command", required=True)
    retiring = "add a signing key; the current one retires after the token lifetime"
    rotate = ring.add_parser("rotate", help=retiring)
    rotate.add_argument("--retire-after", type=float, help="seconds the previous key stays published")
    rotate.add_argument("--pem-file", help="use this RSA private key (PEM) instead of generating one")
    _runs(rotate, "keys.cmd_keys_rotate")
    _runs(ring.add_parser("list", help="list keys: kid, state, retire time, current"), "keys.cmd_keys_list")
    _runs(sub.add_parser("jwks", help="print the public JWKS"), "keys.cmd_jwks")
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
    command.add_argument("--value", required=required, help="the address, subnet, continent or country code")
    command.add_argument("--code", help="the HTTP status of a denial (default: the scope's)")
    command.add_argument("--state", help="enabled (the default for a new one) or disabled")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    overrides = {"data_dir": Path(args.data_dir).expanduser()} if args.data_dir else {}
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    missing = _missing_database(settings, args)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 1
    try:
        return int(_command(args.target)(settings, args))
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except PermissionsFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except LastSuperadminAccess as exc:
        from authz.superadmin_access import EXPLANATION  # loaded already: the change was checked with it

        print(f"error: {exc.keys[0]}: {EXPLANATION}", file=sys.stderr)
        return 1
    except IdentityError as exc:
        print(f"error: {', '.join(exc.keys)}", file=sys.stderr)
        return 1


def _missing_database(settings: Settings, args: argparse.Namespace) -> str | None:
    """Why the command must not run: it would start a new embedded database (and a new encryption key)
    that no server uses, typically from the wrong directory."""
    path = embedded_database(settings)
    if path is None or path.exists() or args.target in CREATING_TARGETS or getattr(args, "create", False):
        return None
    return (
        f'no database at {path}; run "authz serve" or "authz db upgrade" first, pass the server\'s '
        "--data-dir (or AUTHZ_DATA_DIR), or pass --create to start a new database with new keys"
    )


if __name__ == "__main__":
    sys.exit(main())
