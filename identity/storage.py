"""Shared plumbing of the SQL repositories: error translation and row conversion."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from identity.errors import Conflict, StorageUnavailable

_UNAVAILABLE = (OperationalError, InterfaceError, OSError, asyncio.TimeoutError, ConnectionError)


@asynccontextmanager
async def transaction(
    engine: AsyncEngine, conflict_key: str = "value.taken"
) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction; storage failures become domain errors (nothing half-written).

    On SQLite the transaction takes the write lock at once (``BEGIN IMMEDIATE``): its reads then see the rows
    its writes change, as ``SELECT ... FOR UPDATE`` gives on PostgreSQL.  (The driver would only begin at the
    first write, leaving a read-then-write open to a concurrent writer in between.)
    """
    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn
    except IntegrityError as exc:
        raise Conflict(conflict_key) from exc
    except _UNAVAILABLE as exc:
        raise StorageUnavailable() from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StorageUnavailable() from exc
        raise


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A read-only connection; storage failures become :class:`StorageUnavailable`."""
    try:
        async with engine.connect() as conn:
            yield conn
    except _UNAVAILABLE as exc:
        raise StorageUnavailable() from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StorageUnavailable() from exc
        raise
