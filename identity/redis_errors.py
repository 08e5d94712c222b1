"""Translation of Redis failures into the domain's :class:`StorageUnavailable`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from identity.errors import StorageUnavailable

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, asyncio.TimeoutError, ConnectionError, OSError)


@asynccontextmanager
async def redis_guard() -> AsyncIterator[None]:
    try:
        yield
    except REDIS_DOWN as exc:
        raise StorageUnavailable() from exc
