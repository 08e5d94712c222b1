"""The shared record of API-key nonces already used, in Redis (``SET key 1 NX PX ttl``).

Every API-key request needs one round trip here, so concurrent checks are coalesced: the calls made while
a batch is in flight wait for the next one, and each batch carries every check queued so far.  Under load
that turns N round trips into one, which is where redis-py's per-command client CPU goes.
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
                    replies = await self._set_nx(batch)
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

    async def _set_nx(self, batch: list[tuple[str, int, asyncio.Future[bool]]]) -> list[object]:
        """Send the batch's ``SET NX PX`` commands in one write and read their replies.

        This is what redis-py's pipeline does, without its per-command bookkeeping (about a third of the
        client CPU of a nonce check).  A connection that failed half-way is dropped, never reused.
        """
        pool = self._redis.connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command(
                conn.pack_commands([("SET", key, "1", "NX", "PX", ttl) for key, ttl, _ in batch])
            )
            return [await conn.read_response() for _ in batch]
        except BaseException:
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)
