"""``authz keys``: the signing keyring (rotate, list) and ``authz jwks``.

A rotation is written to SQL and announced on the change channel: every running instance reloads its
keyring, publishes both keys in its JWKS and signs new tokens with the new key at once; the previous key
stays published until the tokens it signed have expired (``--retire-after``, default: the longest token
lifetime and a minute).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import orjson

from authz.cli.common import announce, with_services
from authz.cli.errors import CommandError
from authz.keys import KeyError_, Keyring, SigningKey, jwks_of, load_or_create, retire_after
from authz.services import Services
from authz.settings import Settings


def keyring_of(settings: Settings, services: Services, retire: float | None = None) -> Keyring:
    """The keyring as the service builds it (the same retirement delay)."""
    if retire is None:
        lifetimes = (settings.jwt_expire_time, settings.access_token_expire_time)
        retire = retire_after(*lifetimes, settings.email_token_expire_time, settings.reset_token_expire_time)
    return Keyring(services.signing_keys, retire_after=retire)


async def _loaded(settings: Settings, services: Services, retire: float | None = None) -> Keyring:
    keyring = keyring_of(settings, services, retire)
    # As a starting instance would: an empty keyring gets the configured (or data-dir) key first.
    await keyring.seed(load_or_create(settings.jwt_private_key, settings.data_dir), configured=bool(settings.jwt_private_key))
    return keyring


def cmd_keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    new_key = None
    if args.pem_file:
        try:
            new_key = SigningKey.from_pem(Path(args.pem_file).read_bytes())
        except (OSError, KeyError_) as exc:
            raise CommandError(f"--pem-file: {exc}") from None
    if args.retire_after is not None and args.retire_after < 0:
        raise CommandError("--retire-after must not be negative")

    async def run(services: Services) -> int:
        keyring = await _loaded(settings, services, args.retire_after)
        previous = keyring.active.kid
        key = await keyring.rotate(new_key)
        await announce(services, services.changes.signing_keys_changed)
        print(f"new signing key {key.kid} is active; {previous} is published until it retires")
        return 0

    return with_services(settings, run)


def cmd_keys_list(settings: Settings, _args: argparse.Namespace) -> int:
    async def run(services: Services) -> int:
        keyring = await _loaded(settings, services)
        published = {key.kid for key in keyring.published()}
        for entry in keyring.entries():
            retire = "-" if entry.retire_at is None else datetime.fromtimestamp(entry.retire_at, UTC).isoformat()
            state = entry.state if entry.key.kid in published else "retired"
            current = "current" if entry.key.kid == keyring.active.kid else ""
            print(f"{entry.key.kid}\t{state}\t{retire}\t{current}".rstrip())
        return 0

    return with_services(settings, run)


def cmd_jwks(settings: Settings, _args: argparse.Namespace) -> int:
    async def run(services: Services) -> int:
        print(orjson.dumps(jwks_of(await _loaded(settings, services)), option=orjson.OPT_INDENT_2).decode())
        return 0

    return with_services(settings, run)
