"""HMAC API keys in SQL (``SqlApiKeyRepository``): creation (secret returned once), lookup with the secret
decrypted, and the listing, update and deletion of one holder's keys (a user's or a service account's)."""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from identity.db import api_keys, utcnow
from identity.errors import ValidationFailed
from identity.models import API_KEY_ALGORITHMS, ApiKey
from identity.secretbox import SecretBox
from identity.storage import reading, transaction

#: Columns a listing may be ordered by (``order_by``): the entity's, and ``id`` (Barong's default).
ORDERABLE = ("id", "kid", "algorithm", "scope", "state", "created_at", "updated_at")


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

    async def list_for(
        self,
        holder_type: str,
        holder_id: int,
        *,
        order_by: str = "created_at",
        ordering: str = "asc",
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[ApiKey], int]:
        """One page of a holder's keys, and how many the holder has in all.

        ``order_by`` is one of :data:`ORDERABLE`, ``ordering`` ``asc`` or ``desc`` (the caller validates them);
        ``id`` breaks ties so that pages never overlap.
        """
        if order_by not in ORDERABLE or ordering not in ("asc", "desc"):
            raise ValueError(f"cannot order api keys by {order_by} {ordering}")
        column = api_keys.c[order_by]
        tie = api_keys.c.id
        direction = (column.desc(), tie.desc()) if ordering == "desc" else (column.asc(), tie.asc())
        held = (api_keys.c.key_holder_account_type == holder_type) & (api_keys.c.key_holder_account_id == holder_id)
        async with reading(self._engine) as conn:
            total = int(await conn.scalar(select(func.count()).select_from(api_keys).where(held)) or 0)
            rows = (
                await conn.execute(select(api_keys).where(held).order_by(*direction).offset(offset).limit(limit))
            ).all()
        return [self._key(row) for row in rows], total

    async def get_for(self, holder_type: str, holder_id: int, kid: str) -> ApiKey | None:
        """The key ``kid`` if it belongs to that holder (someone else's key is as good as absent)."""
        key = await self.get(kid)
        if key is None or key.holder_type != holder_type or key.holder_id != holder_id:
            return None
        return key

    async def update(
        self, kid: str, *, scope: tuple[str, ...] | None = None, state: str | None = None
    ) -> ApiKey | None:
        """Change a key's scope and/or state; None when there is no such key."""
        values: dict[str, Any] = {"updated_at": utcnow()}
        if scope is not None:
            values["scope"] = orjson.dumps(list(scope)).decode()
        if state is not None:
            values["state"] = state
        async with transaction(self._engine) as conn:
            result = await conn.execute(update(api_keys).where(api_keys.c.kid == kid).values(**values))
        if result.rowcount != 1:
            return None
        return await self.get(kid)

    async def delete(self, kid: str) -> bool:
        """Remove a key; True when it existed."""
        async with transaction(self._engine) as conn:
            result = await conn.execute(delete(api_keys).where(api_keys.c.kid == kid))
        return result.rowcount == 1

    async def set_state(self, kid: str, state: str) -> bool:
        async with transaction(self._engine) as conn:
            result = await conn.execute(
                update(api_keys).where(api_keys.c.kid == kid).values(state=state, updated_at=utcnow())
            )
        return result.rowcount == 1
