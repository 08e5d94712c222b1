"""The stored keyring of the service's RS256 signing keys (``signing_keys``), shared by every instance.

Private keys are kept encrypted with the service's :class:`~identity.secretbox.SecretBox`.  A key is
``active`` (new tokens are signed with the newest active key) or ``retiring`` (still published, so tokens it
signed keep verifying, until ``retire_at``).  Rows are never deleted: a retired key's kid stays known, so a
restarted instance never brings back the key it was configured with once that key was rotated away.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from identity.db import signing_keys, utcnow
from identity.errors import Conflict
from identity.secretbox import SecretBox
from identity.storage import reading, transaction

ACTIVE = "active"
RETIRING = "retiring"


@dataclass(frozen=True)
class StoredKey:
    """One row: the private key as PEM, its state, and when a retiring key stops being published."""

    kid: str
    private_pem: str
    state: str
    retire_at: float | None  # epoch seconds
    created_at: float


def _context(kid: str) -> str:
    return f"signing_key:{kid}"


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


class SqlSigningKeyRepository:
    """The ``signing_keys`` table."""

    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    async def list_all(self) -> list[StoredKey]:
        async with reading(self._engine) as conn:
            rows = (await conn.execute(select(signing_keys).order_by(signing_keys.c.created_at))).all()
        return [
            StoredKey(
                kid=row.kid,
                private_pem=self._box.decrypt(row.private_key_encrypted, context=_context(row.kid)),
                state=row.state,
                retire_at=_epoch(row.retire_at),
                created_at=_epoch(row.created_at) or 0.0,
            )
            for row in rows
        ]

    async def add_first(self, kid: str, private_pem: str) -> None:
        """Store ``kid`` as the active key when the keyring is empty (the first start seeds it)."""
        try:
            async with transaction(self._engine) as conn:
                if (await conn.execute(select(signing_keys.c.kid).limit(1))).first() is None:
                    await conn.execute(signing_keys.insert().values(**self._row(kid, private_pem)))
        except Conflict:
            pass  # another instance seeded the same key at the same moment

    async def activate(self, kid: str, private_pem: str, *, retire_at: float, only_if_new: bool) -> bool:
        """Make ``kid`` the active key; the keys active until now retire at ``retire_at``.

        With ``only_if_new`` nothing happens when ``kid`` is in the keyring already (in any state).
        Returns whether the keyring changed.
        """
        try:
            async with transaction(self._engine) as conn:
                known = (await conn.execute(select(signing_keys.c.kid).where(signing_keys.c.kid == kid))).first()
                if known is not None and only_if_new:
                    return False
                now = utcnow()
                await conn.execute(
                    update(signing_keys)
                    .where(signing_keys.c.state == ACTIVE, signing_keys.c.kid != kid)
                    .values(state=RETIRING, retire_at=datetime.fromtimestamp(retire_at, UTC), updated_at=now)
                )
                if known is None:
                    await conn.execute(signing_keys.insert().values(**self._row(kid, private_pem)))
                else:
                    await conn.execute(
                        update(signing_keys)
                        .where(signing_keys.c.kid == kid)
                        .values(state=ACTIVE, retire_at=None, updated_at=now)
                    )
        except Conflict:
            return False  # the same key activated concurrently by another instance
        return True

    def _row(self, kid: str, private_pem: str) -> dict[str, object]:
        now = utcnow()
        return {
            "kid": kid,
            "private_key_encrypted": self._box.encrypt(private_pem, context=_context(kid)),
            "state": ACTIVE,
            "retire_at": None,
            "created_at": now,
            "updated_at": now,
        }
