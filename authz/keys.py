"""The RS256 signing key of the upstream JWTs and the JWKS document that publishes it.

The key comes from ``AUTHZ_JWT_PRIVATE_KEY`` (PEM) or is generated once (RSA-2048) into the data dir with
mode 0600.  Its ``kid`` is the RFC 7638 thumbprint of the public key, so it changes whenever the key does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

KEY_FILE_NAME = "jwt-private.pem"


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
        data_dir.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        blob = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another worker won the race; read its key below
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
    return SigningKey.from_pem(path.read_bytes())


def jwks(*keys: SigningKey) -> dict[str, Any]:
    """The JWKS document publishing the public half of ``keys``."""
    return {"keys": [key.public_jwk for key in keys]}
