"""The shared record of API-key nonces already used, in Redis (``SET key 1 NX PX ttl``).

Every API-key request needs one round trip here, so concurrent checks are coalesced: the calls made while
a pipeline is in flight wait for the next one, and each pipeline carries every check queued so far.  Under
load that turns N round trips into one, which is where redis-py's per-command client CPU goes.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from identity.redis_errors import redis_guard


class NonceLedger:
    """Answers "is this the first use of this nonce?" for every instance sharing the Redis."""

    def __init__(self, redis: Redis, namespace: str, *, max_batch: int = 256) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:nonce:"
        self._max_batch = max_batch
        self._pending: list[tuple[str, int, asyncio.Future[bool]]] = []
        self._flushing = False

    async def first_use(self, kid: str, nonce: str, ttl_ms: int) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((f"{self._prefix}{kid}:{nonce}", ttl_ms, future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        async with redis_guard():
            return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
                try:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for key, ttl, _ in batch:
                            pipe.set(key, b"1", nx=True, px=ttl)
                        replies = await pipe.execute()
                except BaseException as exc:  # noqa: BLE001 - every waiter learns of the failure
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(exc if isinstance(exc, Exception) else ConnectionError())
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, _, future), reply in zip(batch, replies, strict=True):
                    if not future.done():
                        future.set_result(bool(reply))
        finally:
            self._flushing = False
