"""Reversible encryption at rest for secrets the service must read back (API-key secrets, TOTP seeds).

AES-256-GCM with a random 96-bit nonce per value; the stored text is ``v1:<base64(nonce + ciphertext)>``.
The key comes from ``AUTHZ_ENCRYPTION_KEY`` (base64 of 32 bytes) or is generated once into the data dir.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_PREFIX = "v1:"


class SecretBoxError(ValueError):
    """A stored secret could not be decrypted (wrong key or corrupt value)."""


def parse_key(text: str) -> bytes:
    """Decode a base64 (or 64-char hex) 32-byte key; ``ValueError`` otherwise."""
    text = text.strip()
    try:
        raw = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise ValueError("must be 32 bytes, base64 or hex encoded") from None
    if len(raw) != 32:
        raise ValueError("must be 32 bytes, base64 or hex encoded")
    return raw


def load_or_create_key(path: Path) -> bytes:
    """Read the key file at ``path``, creating it (mode 0600) with a fresh key if absent."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode() + "\n")
    return parse_key(path.read_text())


class SecretBox:
    """Encrypts and decrypts short secrets under one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode() or None)
        return _PREFIX + base64.b64encode(nonce + sealed).decode()

    def decrypt(self, stored: str, *, context: str = "") -> str:
        if not stored.startswith(_PREFIX):
            raise SecretBoxError("unknown secret format")
        try:
            blob = base64.b64decode(stored[len(_PREFIX) :], validate=True)
            return self._aead.decrypt(blob[:12], blob[12:], context.encode() or None).decode()
        except (InvalidTag, ValueError, binascii.Error) as exc:
            raise SecretBoxError("secret cannot be decrypted") from exc
