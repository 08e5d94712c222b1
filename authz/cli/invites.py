"""``authz invite-codes create | list``: the codes a sign-up through the token API (``POST /v1/user``) needs."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta

from authz.cli.common import with_services
from authz.cli.errors import CommandError
from authz.services import Services
from authz.settings import Settings
from identity.invite_codes import SqlInviteCodeRepository

_DURATION = re.compile(r"(\d+)([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def expiry(raw: str | None, now: datetime) -> datetime | None:
    """``--expires``: a duration from now (``30d``, ``12h``, ``90m``) or an ISO 8601 date or time (UTC unless
    it says otherwise); None when not given."""
    if raw is None or raw.strip().lower() in ("", "never"):
        return None
    text = raw.strip().lower()
    duration = _DURATION.fullmatch(text)
    if duration:
        amount, unit = int(duration.group(1)), duration.group(2)
        if amount <= 0:
            raise CommandError("--expires: the duration must be positive")
        return now + timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise CommandError(
            f"--expires {raw!r}: give a duration (30d, 12h, 90m) or an ISO date/time"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_invite_codes_create(settings: Settings, args: argparse.Namespace) -> int:
    expires_at = expiry(args.expires, datetime.now(UTC))
    if args.uses < 1:
        raise CommandError("--uses must be at least 1")

    async def body(services: Services) -> int:
        created = await SqlInviteCodeRepository(services.engine).create(
            max_uses=args.uses, expires_at=expires_at, created_by="cli", code=args.code
        )
        print(created.code)
        return 0

    return with_services(settings, body)


def cmd_invite_codes_list(settings: Settings, _args: argparse.Namespace) -> int:
    async def body(services: Services) -> int:
        for code in await SqlInviteCodeRepository(services.engine).list():
            expires = code.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ") if code.expires_at else "never"
            print(f"{code.code}\t{code.issued}+{code.pending}/{code.max_uses}\t{expires}")
        return 0

    return with_services(settings, body)
