"""Commands on accounts: users (create, role, state), service accounts and API keys."""

from __future__ import annotations

import argparse
import base64
import binascii
import re
import sys

import orjson

from authz.admin_services import AdminServices
from authz.cli.common import announce, with_admin, with_services
from authz.cli.errors import CommandError
from authz.services import Services
from authz.settings import Settings
from identity.admin.actor import Actor
from identity.errors import Conflict, StorageUnavailable, ValidationFailed
from identity.login import otp_context
from identity.models import SERVICE_ACCOUNT_HOLDER, USER_HOLDER
from identity.passwords import hash_password
from identity.service_accounts import announcements

USER_STATES = ("pending", "active", "banned", "deleted", "locked")


EMAIL = re.compile(r"[^@\s]+@[^@\s]+")  # the shape only: one @, no spaces


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

    return with_services(settings, body)


def cmd_users_set_role(settings: Settings, args: argparse.Namespace) -> int:
    """``POST /admin/users/role`` as an operator (who acts as a superadmin); prints uid, role and state."""

    async def body(admin: AdminServices) -> int:
        user = (await admin.users.set_role(Actor.cli(), args.uid, args.role)).user
        print(f"{user.uid}\t{user.role}\t{user.state}")
        return 0

    return with_admin(settings, body)


def cmd_users_set_state(settings: Settings, args: argparse.Namespace) -> int:
    """``POST /admin/users/update`` with a state, as an operator; prints uid, role and state.  A state that may
    not log in revokes the user's sessions and deactivates its API keys."""

    async def body(admin: AdminServices) -> int:
        try:
            user = (await admin.users.set_state(Actor.cli(), args.uid, args.state)).user
        except StorageUnavailable:
            # Written, but the sessions (in Redis) could not be revoked?  Without Redis there are none to use.
            user = (await admin.users.get(args.uid)).user
            if user.state != args.state:
                raise
            print("note: Redis not reachable; the user's sessions were not revoked", file=sys.stderr)
        print(f"{user.uid}\t{user.role}\t{user.state}")
        return 0

    return with_admin(settings, body)


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

    return with_services(settings, body)


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

    return with_services(settings, body)


def cmd_service_accounts_disable(settings: Settings, args: argparse.Namespace) -> int:
    """Barong's delete: the account becomes ``disabled`` and its active keys ``inactive``."""

    async def body(services: Services) -> int:
        result = await services.service_accounts.delete(args.uid)
        if result is None:
            raise CommandError(f"no service account with uid {args.uid} (service_account.doesnt_exist)")
        account, kids = result
        await announce(services, lambda: services.changes.publish(*announcements(account, kids)))
        print(f"disabled service account {account.uid}; {len(kids)} key(s) deactivated")
        return 0

    return with_services(settings, body)


def cmd_api_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    async def body(services: Services) -> int:
        holder_id, holder_type = await _key_holder(services, args.uid)
        key = await services.api_keys.create(
            holder_id=holder_id, holder_type=holder_type, algorithm=args.algorithm
        )
        await announce(services, lambda: services.changes.api_key_changed(key.kid))
        print(orjson.dumps({"kid": key.kid, "secret": key.secret, "algorithm": key.algorithm}).decode())
        return 0

    return with_services(settings, body)


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

