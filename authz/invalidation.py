"""Cross-instance invalidation: the subscriber side of ``identity.changes``.

The listener keeps one pub/sub connection to Redis.  While it is subscribed the instance may serve cached
sessions, users and API keys, because every change reaches it within a second; the moment the connection
drops, ``healthy`` turns false, the caches are emptied and bypassed, and on reconnection everything cached
is dropped again (messages may have been missed) and the policies are reloaded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from identity.changes import channel
from identity.redis_errors import REDIS_DOWN

log = logging.getLogger(__name__)

PING_INTERVAL = 1.0  # seconds between liveness pings on the pub/sub connection


class ChangeListener:
    """Receives change messages and tells whether the invalidation channel is up."""

    def __init__(
        self,
        redis: Redis,
        namespace: str,
        *,
        on_message: Callable[[str], Awaitable[None] | None],
        on_resync: Callable[[], Awaitable[None]],
        on_down: Callable[[], None],
    ) -> None:
        self._redis = redis
        self._channel = channel(namespace)
        self._on_message = on_message
        self._on_resync = on_resync
        self._on_down = on_down
        self.healthy = False
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with backoff."""
        backoff = 0.05
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                await self._on_resync()
                self.healthy = True
                self.subscribed.set()
                backoff = 0.05
                await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except REDIS_DOWN as exc:
                log.warning("invalidation channel down: %s", exc)
            except Exception:  # a bug in a handler must not leave the caches trusted
                log.exception("invalidation listener failed")
            finally:
                self._mark_down()
                try:
                    await asyncio.wait_for(pubsub.aclose(), timeout=1.0)
                except BaseException:  # noqa: BLE001 - closing a dead connection may fail in any way
                    pass
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    def _mark_down(self) -> None:
        if self.healthy:
            self.healthy = False
            self.subscribed.clear()
        self._on_down()

    async def _listen(self, pubsub) -> None:  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        next_ping = loop.time() + PING_INTERVAL
        while True:
            message = await pubsub.get_message(timeout=PING_INTERVAL)
            if message is not None and message.get("type") == "message":
                data = message["data"]
                result = self._on_message(data.decode() if isinstance(data, bytes) else data)
                if result is not None:
                    await result
            if loop.time() >= next_ping:
                # A half-open connection is only noticed by writing to it.
                await asyncio.wait_for(pubsub.ping(), timeout=PING_INTERVAL)
                next_ping = loop.time() + PING_INTERVAL
