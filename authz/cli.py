"""The ``authz`` command: serve, migrate, and administer users, service accounts, API keys, permissions and
restrictions.

Every write goes through the same repositories as the API and announces itself on the change channel, so
running instances apply it within a second.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from authz.blocklogin import revoke_blocked_sessions
from authz.embedded_redis import _answers, socket_path
from authz.geoip import GeoIP
from authz.keys import jwks, load_or_create
from authz.services import Services
from authz.settings import Settings, SettingsError, load_settings
from identity.errors import Conflict, IdentityError, StorageUnavailable, ValidationFailed
from identity.login import otp_context
from identity.models import API_KEY_ALGORITHMS, SERVICE_ACCOUNT_HOLDER, USER_HOLDER, Permission
from identity.passwords import hash_password
from identity.permissions_file import PermissionsFileError, dump_permissions, parse_permissions
from identity.restrictions import validate_restriction
from identity.service_accounts import announcements
from identity.whitelinks import RedisWhitelinkTokens

USER_STATES = ("pending", "active", "banned", "deleted", "locked")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")  # the shape only: one @, no spaces


class CommandError(Exception):
    """A command failed for a reason the user can fix; printed without a traceback."""


def _redis_url(settings: Settings) -> str | None:
    if settings.redis_url:
        return settings.redis_url
    path = socket_path(settings.data_dir)
    return f"unix://{path}" if _answers(path) else None


def _with_services(settings: Settings, body: Callable[[Services], Awaitable[int]]) -> int:
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


async def _announce(services: Services, publish: Callable[[], Awaitable[None]]) -> None:
    try:
        await publish()
    except StorageUnavailable:
        print("note: Redis not reachable; running instances apply the change at their next reload", file=sys.stderr)


# --- commands -------------------------------------------------------------------------------------------


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


def cmd_users_create(settings: Settings, args: argparse.Namespace) -> int:
    if not EMAIL.fullmatch(args.email):
        raise CommandError("--email is not an e-mail address (email.invalid)")
    if args.state not in USER_STATES:
        raise CommandError(f"--state must be one of {', '.join(USER_STATES)}")
    if args.level < 0:
        raise CommandError("--level must be 0 or more")
    otp_secret = None
    if args.otp_secret:
        try:
            base64.b32decode(args.otp_secret.upper() + "=" * (-len(args.otp_secret) % 8))
        except (binascii.Error, ValueError):
            raise CommandError("--otp-secret must be a base32 TOTP secret") from None
        otp_secret = args.otp_secret.upper()

    async def body(services: Services) -> int:
        from authz.bootstrap import seed_defaults

        # On a fresh install the first admin is created before the first `serve`: seed as serve would.
        await seed_defaults(services)
        roles = {p.role for p in await services.permissions.list_all()}
        if args.role not in roles:
            raise CommandError(f"role {args.role!r} has no permissions (role.doesnt_exist); known: {', '.join(sorted(roles))}")
        user = await services.users.create(
            email=args.email,
            password_digest=hash_password(args.password),
            role=args.role,
            state=args.state,
            level=args.level,
        )
        if otp_secret:
            encrypted = services.box.encrypt(otp_secret, context=otp_context(user.uid))
            await services.users.update(user.uid, otp=True, otp_secret_encrypted=encrypted)
        print(user.uid)
        return 0

    return _with_services(settings, body)


def cmd_service_accounts_create(settings: Settings, args: argparse.Namespace) -> int:
    async def body(services: Services) -> int:
        from authz.bootstrap import seed_defaults

        await seed_defaults(services)  # the role is checked against the permissions, as at `users create`
        owner = await services.users.get_by_uid(args.owner)
        if owner is None:
            raise CommandError(f"no user with uid {args.owner}")
        accounts = services.service_accounts
        try:
            account = await accounts.create(owner, args.role, email=args.email)
        except ValidationFailed as exc:
            if "role.doesnt_exist" not in exc.keys:
                raise
            roles = ", ".join(sorted({p.role for p in await services.permissions.list_all()}))
            unknown = f"role {args.role!r} has no permissions (role.doesnt_exist); known: {roles}"
            raise CommandError(unknown) from None
        except Conflict:
            taken = "the e-mail or uid belongs to a user or service account already (email_or_uid.not_uniq)"
            raise CommandError(taken) from None
        print(account.uid)
        return 0

    return _with_services(settings, body)


def cmd_service_accounts_list(settings: Settings, args: argparse.Namespace) -> int:
    async def body(services: Services) -> int:
        accounts = services.service_accounts
        if args.owner:
            owner = await services.users.get_by_uid(args.owner)
            if owner is None:
                raise CommandError(f"no user with uid {args.owner}")
            found = await accounts.list_for_owner(owner.id)
            owner_uids = {owner.id: owner.uid}
        else:
            found = await accounts.list_all()
            owner_uids = {}
            for owner_id in {a.owner_id for a in found if a.owner_id is not None}:
                user = await services.users.get_by_id(owner_id)
                if user is not None:
                    owner_uids[owner_id] = user.uid
        for a in found:
            owner_uid = owner_uids.get(a.owner_id, "-") if a.owner_id is not None else "-"
            print(f"{a.uid}\t{a.email}\t{a.role}\t{a.level}\t{a.state}\t{owner_uid}")
        return 0

    return _with_services(settings, body)


def cmd_service_accounts_disable(settings: Settings, args: argparse.Namespace) -> int:
    """Barong's delete: the account becomes ``disabled`` and its active keys ``inactive``."""

    async def body(services: Services) -> int:
        result = await services.service_accounts.delete(args.uid)
        if result is None:
            raise CommandError(f"no service account with uid {args.uid} (service_account.doesnt_exist)")
        account, kids = result
        await _announce(services, lambda: services.changes.publish(*announcements(account, kids)))
        print(f"disabled service account {account.uid}; {len(kids)} key(s) deactivated")
        return 0

    return _with_services(settings, body)


def cmd_api_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    async def body(services: Services) -> int:
        holder_id, holder_type = await _key_holder(services, args.uid)
        key = await services.api_keys.create(
            holder_id=holder_id, holder_type=holder_type, algorithm=args.algorithm
        )
        await _announce(services, lambda: services.changes.api_key_changed(key.kid))
        print(orjson.dumps({"kid": key.kid, "secret": key.secret, "algorithm": key.algorithm}).decode())
        return 0

    return _with_services(settings, body)


async def _key_holder(services: Services, uid: str) -> tuple[int, str]:
    """(id, holder type) of the user or service account ``uid`` that may hold a new key."""
    user = await services.users.get_by_uid(uid)
    if user is not None:
        if user.state != "active":
            raise CommandError("the key holder must be active (key_holder_account.invalid)")
        if not user.otp:
            # The decision endpoint refuses keys of holders without 2FA (authz.disabled_2fa).
            raise CommandError("the key holder must have 2FA enabled (resource.api_key.2fa_disabled)")
        return user.id, USER_HOLDER
    account = await services.service_accounts.get_by_uid(uid)
    if account is None:
        raise CommandError(f"no user with uid {uid}, nor service account")
    if account.state != "active":
        raise CommandError("the key holder must be active (key_holder_account.invalid)")
    # No 2FA asked of service accounts (Barong): their owner turning 2FA off deactivates their keys.
    return account.id, SERVICE_ACCOUNT_HOLDER


def cmd_permissions_import(settings: Settings, args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        perms = parse_permissions(path.read_text(), source=str(path))
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CommandError(f"cannot read {path}: not UTF-8 text") from None

    async def body(services: Services) -> int:
        if args.replace:
            added = await services.permissions.add_many(_new(perms, set()), replace=True)
        else:
            stored = {_identity(p) for p in await services.permissions.list_all()}
            added = await services.permissions.add_many(_new(perms, stored))
        await _announce(services, services.changes.permissions_changed)
        print(f"{'replaced with' if args.replace else 'added'} {added} permission(s)")
        return 0

    return _with_services(settings, body)


def _identity(p: Permission) -> tuple[str, str, str, str, str | None]:
    return (p.role, p.verb, p.path, p.action, p.topic)


def _new(perms: list[Permission], stored: set[tuple[str, str, str, str, str | None]]) -> list[Permission]:
    """``perms`` without the rows already ``stored`` and without repeats (importing twice adds nothing)."""
    fresh = []
    for perm in perms:
        if _identity(perm) not in stored:
            stored.add(_identity(perm))
            fresh.append(perm)
    return fresh


def cmd_permissions_export(settings: Settings, _args: argparse.Namespace) -> int:
    async def body(services: Services) -> int:
        sys.stdout.write(dump_permissions(await services.permissions.list_all()))
        return 0

    return _with_services(settings, body)


def cmd_restrictions_add(settings: Settings, args: argparse.Namespace) -> int:
    restriction = validate_restriction(args.category, args.scope, args.value, args.state, args.code)

    async def body(services: Services) -> int:
        row = await services.restrictions.add(restriction)
        await _announce(services, services.changes.restrictions_changed)
        print(row.id)
        if row.category == "blocklogin" and row.enabled:
            geoip = GeoIP.open(settings.geoip_db)
            try:
                revoked = await revoke_blocked_sessions(services.sessions, row, geoip)
            except StorageUnavailable:
                print("note: Redis not reachable; no session was revoked", file=sys.stderr)
            else:
                print(f"revoked {revoked} session(s) opened from blocked addresses", file=sys.stderr)
            finally:
                geoip.close()
        return 0

    return _with_services(settings, body)


def cmd_restrictions_list(settings: Settings, _args: argparse.Namespace) -> int:
    async def body(services: Services) -> int:
        for r in await services.restrictions.list_all():
            print(f"{r.id}\t{r.category}\t{r.scope}\t{r.value}\t{r.code}\t{r.state}")
        return 0

    return _with_services(settings, body)


def cmd_restrictions_remove(settings: Settings, args: argparse.Namespace) -> int:
    async def body(services: Services) -> int:
        if not await services.restrictions.delete(args.id):
            raise CommandError(f"no restriction with id {args.id} (admin.restriction.doesnt_exist)")
        await _announce(services, services.changes.restrictions_changed)
        print(f"removed restriction {args.id}")
        return 0

    return _with_services(settings, body)


def cmd_restrictions_whitelink(settings: Settings, args: argparse.Namespace) -> int:
    """Barong's ``POST /admin/restrictions/whitelink``: a token valid for 1–30 days or hours."""
    if not 1 <= args.expire_time <= 30:
        raise CommandError("--expire-time must be 1 to 30 (admin.restriction.invalid_expire)")
    lifetime = args.expire_time * (86_400 if args.range == "day" else 3600)

    async def body(services: Services) -> int:
        token = await RedisWhitelinkTokens(services.redis, settings.redis_namespace).create(lifetime)
        print(token)
        return 0

    return _with_services(settings, body)


def cmd_jwks(settings: Settings, _args: argparse.Namespace) -> int:
    print(orjson.dumps(jwks(load_or_create(settings.jwt_private_key, settings.data_dir)), option=orjson.OPT_INDENT_2).decode())
    return 0


# --- parser ---------------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="authz", description="Authorization sidecar and identity service")
    sub = root.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service (migrates and seeds first)")
    serve.add_argument("--host")
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

    perms = sub.add_parser("permissions", help="permissions").add_subparsers(dest="perm_command", required=True)
    imp = perms.add_parser("import", help="load permissions from a seeds.yml-shaped YAML file")
    imp.add_argument("file")
    imp.add_argument("--replace", action="store_true", help="delete every permission first")
    imp.set_defaults(func=cmd_permissions_import)
    perms.add_parser("export", help="print permissions as YAML").set_defaults(func=cmd_permissions_export)

    restr = sub.add_parser("restrictions", help="restrictions").add_subparsers(dest="restr_command", required=True)
    add = restr.add_parser("add", help="add a restriction; prints its id")
    add.add_argument("--category", required=True)
    add.add_argument("--scope", required=True)
    add.add_argument("--value", required=True)
    add.add_argument("--code", type=int)
    add.add_argument("--state", default="enabled")
    add.set_defaults(func=cmd_restrictions_add)
    restr.add_parser("list", help="list restrictions").set_defaults(func=cmd_restrictions_list)
    remove = restr.add_parser("remove", help="remove a restriction by id")
    remove.add_argument("id", type=int)
    remove.set_defaults(func=cmd_restrictions_remove)
    link = restr.add_parser("whitelink", help="create a whitelink token (POST /identity/users/access with it)")
    link.add_argument("--expire-time", type=int, default=1, help="1 to 30 (default 1)")
    link.add_argument("--range", choices=("day", "hour"), default="day")
    link.set_defaults(func=cmd_restrictions_whitelink)

    sub.add_parser("jwks", help="print the public JWKS").set_defaults(func=cmd_jwks)
    return root


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
    except IdentityError as exc:
        print(f"error: {', '.join(exc.keys)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
