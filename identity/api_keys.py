"""HMAC API keys: creation (secret returned once) and lookup with the secret decrypted (``SqlApiKeyRepository``)."""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from identity.db import api_keys, utcnow
from identity.errors import ValidationFailed
from identity.models import API_KEY_ALGORITHMS, ApiKey
from identity.secretbox import SecretBox
from identity.storage import reading, transaction


def _context(kid: str) -> str:
    # Binds each ciphertext to its kid: a secret copied onto another row does not decrypt.
    return f"api_key:{kid}"


class SqlApiKeyRepository:
    """Reads and writes the ``api_keys`` table; secrets are AES-GCM encrypted at rest."""

    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    def _key(self, row: Row[Any]) -> ApiKey:
        return ApiKey(
            id=row.id,
            kid=row.kid,
            algorithm=row.algorithm,
            state=row.state,
            holder_type=row.key_holder_account_type,
            holder_id=row.key_holder_account_id,
            secret=self._box.decrypt(row.secret_encrypted, context=_context(row.kid)),
            scope=tuple(orjson.loads(row.scope)) if row.scope else (),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    async def create(
        self,
        *,
        holder_id: int,
        holder_type: str = "User",
        algorithm: str = "HS256",
        scope: tuple[str, ...] = (),
    ) -> ApiKey:
        """A new active key with a random 16-hex kid and 32-hex secret (Barong's shapes)."""
        algorithm = algorithm.upper()
        if algorithm not in API_KEY_ALGORITHMS:
            raise ValidationFailed(["kid.blank", "algorithm.inclusion"])
        kid = secrets.token_hex(8)
        secret = secrets.token_hex(16)
        now = utcnow()
        async with transaction(self._engine) as conn:
            await conn.execute(
                api_keys.insert().values(
                    kid=kid,
                    key_holder_account_type=holder_type,
                    key_holder_account_id=holder_id,
                    algorithm=algorithm,
                    scope=orjson.dumps(list(scope)).decode(),
                    secret_encrypted=self._box.encrypt(secret, context=_context(kid)),
                    state="active",
                    created_at=now,
                    updated_at=now,
                )
            )
        key = await self.get(kid)
        assert key is not None
        return key

    async def get(self, kid: str) -> ApiKey | None:
        async with reading(self._engine) as conn:
            row = (await conn.execute(select(api_keys).where(api_keys.c.kid == kid))).first()
        return self._key(row) if row else None

    async def set_state(self, kid: str, state: str) -> bool:
        async with transaction(self._engine) as conn:
            result = await conn.execute(
                update(api_keys).where(api_keys.c.kid == kid).values(state=state, updated_at=utcnow())
            )
        return result.rowcount == 1
