"""The RS256 signing keys of the service's JWTs, the keyring every instance shares, and the JWKS document.

The first key comes from ``AUTHZ_JWT_PRIVATE_KEY`` (PEM) or is generated once (RSA-2048) into the data dir
with mode 0600, and seeds the keyring (``signing_keys`` in SQL) on first start.  ``authz keys rotate`` adds
a new active key there; the previous one stays published until the tokens it signed have expired.  Every
instance reloads the keyring when the rotation is announced on the change channel.  A ``kid`` is the
RFC 7638 thumbprint of the public key, so it changes whenever the key does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from identity.signing_keys import ACTIVE, SqlSigningKeyRepository, StoredKey

log = logging.getLogger(__name__)

KEY_FILE_NAME = "jwt-private.pem"
#: Added to the longest token lifetime before a rotated-away key stops being published (clock skew).
RETIRE_LEEWAY = 60.0


class KeyError_(ValueError):
    """The configured private key is not a usable RSA key."""


@dataclass(frozen=True)
class SigningKey:
    """A private RSA key with its ``kid`` and public JWK."""

    private_key: rsa.RSAPrivateKey
    kid: str
    public_jwk: dict[str, Any]

    @classmethod
    def from_pem(cls, pem: str | bytes) -> SigningKey:
        data = pem.encode() if isinstance(pem, str) else pem
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyError_("not a PEM private key") from exc
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
            raise KeyError_("must be an RSA private key of at least 2048 bits")
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        kid = thumbprint(jwk)
        return cls(key, kid, {**jwk, "kid": kid, "use": "sig", "alg": "RS256"})

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url without padding) of an RSA public JWK."""
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def load_or_create(pem: str, data_dir: Path) -> SigningKey:
    """The configured key, else the one in ``data_dir`` (generated there on first use, mode 0600)."""
    if pem:
        return SigningKey.from_pem(pem)
    path = data_dir / KEY_FILE_NAME
    if not path.exists():
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        blob = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Workers starting together race here.  The key is written under a name of its own, then linked into
        # place: the link never replaces a key already there, and no worker reads half a key.
        fd, partial = tempfile.mkstemp(prefix=f".{KEY_FILE_NAME}.", dir=data_dir)  # mode 0600
        with os.fdopen(fd, "wb") as handle:
            handle.write(blob)
        try:
            os.link(partial, path)
        except FileExistsError:
            pass  # another worker won the race; read its key below
        finally:
            os.unlink(partial)
    return SigningKey.from_pem(path.read_bytes())


def jwks(*keys: SigningKey) -> dict[str, Any]:
    """The JWKS document publishing the public half of ``keys``."""
    return {"keys": [key.public_jwk for key in keys]}


def retire_after(*lifetimes: float) -> float:
    """How long a rotated-away key stays published: the longest lifetime of the tokens it signs, and a bit."""
    return max(lifetimes) + RETIRE_LEEWAY


def generate() -> SigningKey:
    """A new RSA-2048 signing key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey.from_pem(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


class Signer(Protocol):
    """What signs a token: read ``kid`` and ``private_key`` at each signing to follow key rotations."""

    @property
    def kid(self) -> str: ...

    @property
    def private_key(self) -> rsa.RSAPrivateKey: ...


@dataclass(frozen=True)
class KeyringEntry:
    key: SigningKey
    state: str
    retire_at: float | None


class CurrentKey:
    """The keyring's current signing key, read live: ``.kid``, ``.private_key`` and ``.public_jwk`` follow
    every rotation (hand this, not a :class:`SigningKey`, to whatever signs)."""

    __slots__ = ("_keyring",)

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    @property
    def kid(self) -> str:
        return self._keyring.active.kid

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        return self._keyring.active.private_key

    @property
    def public_jwk(self) -> dict[str, Any]:
        return self._keyring.active.public_jwk


class PublishedKeys(Mapping[str, rsa.RSAPublicKey]):
    """Every published public key by ``kid``, read live: a retiring key disappears at its ``retire_at``."""

    __slots__ = ("_keyring",)

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def __getitem__(self, kid: str) -> rsa.RSAPublicKey:
        for key in self._keyring.published():
            if key.kid == kid:
                return key.private_key.public_key()
        raise KeyError(kid)

    def __iter__(self) -> Iterator[str]:
        return iter([key.kid for key in self._keyring.published()])

    def __len__(self) -> int:
        return len(self._keyring.published())


class Keyring:
    """The service's signing keys as stored in SQL, held in memory and reloaded on announcements.

    :attr:`current` signs (the newest active key); :attr:`public_keys` verifies (every active key and every
    retiring one until its ``retire_at``, on ``clock``).
    """

    def __init__(
        self,
        repository: SqlSigningKeyRepository,
        *,
        retire_after: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repository = repository
        self._retire_after = retire_after
        self._clock = clock
        self._entries: tuple[KeyringEntry, ...] = ()
        self._active: SigningKey | None = None
        self._parsed: dict[str, SigningKey] = {}
        self._reload: asyncio.Task[None] | None = None
        self._dirty = False
        self.current = CurrentKey(self)
        self.public_keys: Mapping[str, rsa.RSAPublicKey] = PublishedKeys(self)

    @property
    def active(self) -> SigningKey:
        """The signing key right now (a value: it does not follow later rotations)."""
        if self._active is None:
            raise RuntimeError("the keyring is not loaded")
        return self._active

    def published(self) -> list[SigningKey]:
        now = self._clock()
        return [e.key for e in self._entries if e.state == ACTIVE or (e.retire_at is not None and now < e.retire_at)]

    def entries(self) -> tuple[KeyringEntry, ...]:
        return self._entries

    async def seed(self, key: SigningKey, *, configured: bool) -> None:
        """Bring the start-up key in, then load.

        A generated (data-dir) key only seeds an empty keyring.  A configured key (``AUTHZ_JWT_PRIVATE_KEY``)
        that the keyring has never held becomes the active key, as a rotation: changing the setting keeps
        working as it did before the keyring existed.  One that was rotated away is not brought back.
        """
        pem = key.private_pem().decode()
        if configured:
            if await self._repository.activate(key.kid, pem, retire_at=self._retire_time(), only_if_new=True):
                log.info("configured signing key %s is now active", key.kid)
        else:
            await self._repository.add_first(key.kid, pem)
        await self.load()

    async def rotate(self, key: SigningKey | None = None) -> SigningKey:
        """Make ``key`` (default: a new one) the active key; the previous ones retire after ``retire_after``."""
        key = key or generate()
        await self._repository.activate(key.kid, key.private_pem().decode(), retire_at=self._retire_time(), only_if_new=False)
        await self.load()
        return key

    def _retire_time(self) -> float:
        return self._clock() + self._retire_after

    async def load(self) -> None:
        """Read the keyring from SQL (raises :class:`~identity.errors.StorageUnavailable`)."""
        rows = await self._repository.list_all()
        entries = tuple(KeyringEntry(self._parse(row), row.state, row.retire_at) for row in rows)
        active = [e.key for e in entries if e.state == ACTIVE]
        if not active:
            raise RuntimeError("the signing keyring has no active key")
        self._entries = entries
        self._active = active[-1]  # the newest: instances that seeded concurrently agree on it

    def _parse(self, row: StoredKey) -> SigningKey:
        key = self._parsed.get(row.kid)
        if key is None:
            key = self._parsed[row.kid] = SigningKey.from_pem(row.private_pem)
        return key

    def schedule(self) -> None:
        """Reload soon (a rotation was announced); reloads asked for while one runs are folded into one."""
        self._dirty = True
        if self._reload is None or self._reload.done():
            self._reload = asyncio.get_running_loop().create_task(self._reload_dirty(), name="authz-keyring-reload")

    async def _reload_dirty(self) -> None:
        while self._dirty:
            self._dirty = False
            try:
                await self.load()
            except Exception:  # the periodic reload tries again; signing goes on with the keys held
                log.warning("signing keyring reload failed", exc_info=True)

    async def run(self, refresh_interval: float) -> None:
        """Reload every ``refresh_interval`` seconds (announcements may be missed while Redis is away)."""
        while True:
            await asyncio.sleep(refresh_interval)
            self.schedule()

    async def stop(self) -> None:
        if self._reload is not None:
            await asyncio.wait([self._reload], timeout=5.0)


def jwks_of(keyring: Keyring) -> dict[str, Any]:
    """The JWKS document publishing every key of ``keyring`` that verifies right now."""
    return jwks(*keyring.published())
