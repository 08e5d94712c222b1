"""Change notifications on Redis pub/sub: every write that the decision endpoint caches is announced here.

Messages on the channel ``<namespace>:changes`` are ``permissions``, ``restrictions``, ``user:<uid>``,
``session:<session hash>``, ``apikey:<kid>`` and ``signing_keys``; every running instance applies them
within a second.
"""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis

from identity.redis_errors import redis_guard

PERMISSIONS = "permissions"
RESTRICTIONS = "restrictions"
SIGNING_KEYS = "signing_keys"


def channel(namespace: str) -> str:
    return f"{namespace}:changes"


class ChangePublisher:
    """Publishes change notifications (``RedisChangePublisher`` in all but name: Redis is the only backend)."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        self._redis = redis
        self._channel = channel(namespace)
        #: Applied to every message before it is published: the writing instance's own caches drop the
        #: changed value at once instead of after the pub/sub round trip.
        self.local: Callable[[str], None] | None = None

    async def publish(self, *messages: str) -> None:
        if self.local is not None:
            for message in messages:
                self.local(message)
        async with redis_guard():
            if len(messages) == 1:
                await self._redis.publish(self._channel, messages[0])
                return
            async with self._redis.pipeline(transaction=False) as pipe:
                for message in messages:
                    pipe.publish(self._channel, message)
                await pipe.execute()

    async def permissions_changed(self) -> None:
        await self.publish(PERMISSIONS)

    async def restrictions_changed(self) -> None:
        await self.publish(RESTRICTIONS)

    async def user_changed(self, uid: str) -> None:
        await self.publish(f"user:{uid}")

    async def sessions_revoked(self, session_hashes: list[str]) -> None:
        if session_hashes:
            await self.publish(*(f"session:{h}" for h in session_hashes))

    async def api_key_changed(self, kid: str) -> None:
        await self.publish(f"apikey:{kid}")

    async def signing_keys_changed(self) -> None:
        await self.publish(SIGNING_KEYS)
