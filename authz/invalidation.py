"""Cross-instance invalidation: the subscriber side of ``identity.changes``.

The listener keeps one pub/sub connection to Redis.  While it is subscribed *and* Redis answered its last
liveness ping less than ``staleness`` seconds ago, the instance may serve cached sessions, users and API
keys (:meth:`ChangeListener.trusted`), because every change reaches it within a second.  The moment the
connection drops or a pong is late, the caches are emptied and bypassed, so decisions go to Redis and fail
closed (503) if it does not answer; on reconnection everything cached is dropped again (messages may have
been missed) and the policies are reloaded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from identity.changes import channel
from identity.redis_errors import REDIS_DOWN

log = logging.getLogger(__name__)



PING_PAYLOAD = "authz-liveness"


class PongOverdue(ConnectionError):
    """Redis did not answer the listener's ping in time: treat the channel as down."""


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
        staleness: float = 1.0,
    ) -> None:
        self._redis = redis
        # Cached values are trusted only while Redis answered a ping within ``staleness`` seconds; pings go
        # out three times per window so that one lost reply does not flap the channel.
        self._staleness = staleness
        self._ping_interval = staleness / 3
        self._last_pong = float("-inf")
        self._channel = channel(namespace)
        self._on_message = on_message
        self._on_resync = on_resync
        self._on_down = on_down
        self.healthy = False
        self.subscribed = asyncio.Event()
        self._stopped = False

    def trusted(self) -> bool:
        """True while caches may answer: subscribed, and Redis was heard from recently."""
        return self.healthy and asyncio.get_running_loop().time() - self._last_pong < self._staleness

    def stop(self) -> None:
        """Make :meth:`run` return at its next step (call before cancelling its task).

        redis-py can swallow a cancellation that races a read timeout (it surfaces as a timeout); the
        flag makes sure the loop ends anyway instead of reconnecting forever.
        """
        self._stopped = True

    async def run(self) -> None:
        """Listen until stopped or cancelled, reconnecting with backoff."""
        backoff = 0.05
        while not self._stopped:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await asyncio.wait_for(pubsub.subscribe(self._channel), timeout=self._staleness)
                await self._on_resync()
                self._last_pong = asyncio.get_running_loop().time()
                self.healthy = True
                self.subscribed.set()
                backoff = 0.05
                await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except REDIS_DOWN as exc:
                if not self._stopped:
                    log.warning("invalidation channel down: %s", exc)
            except Exception:  # a bug in a handler must not leave the caches trusted
                log.exception("invalidation listener failed")
            finally:
                self._mark_down()
                try:
                    await asyncio.wait_for(pubsub.aclose(), timeout=1.0)
                except BaseException:  # noqa: BLE001 - closing a dead connection may fail in any way
                    pass
            if self._stopped:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    def _mark_down(self) -> None:
        if self.healthy:
            self.healthy = False
            self.subscribed.clear()
        self._on_down()

    async def _listen(self, pubsub) -> None:  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        next_ping = loop.time()
        while not self._stopped:  # a cancellation swallowed by redis-py would otherwise go unnoticed
            now = loop.time()
            if now - self._last_pong >= self._staleness:
                # A frozen or partitioned Redis sends nothing at all: only a missing pong tells.
                raise PongOverdue(f"no pong for {now - self._last_pong:.2f}s")
            if now >= next_ping:
                # The reply arrives as a "pong" message (on a client that does not decode responses:
                # redis-py drops pub/sub pongs when it decodes).
                await asyncio.wait_for(pubsub.ping(PING_PAYLOAD), timeout=self._ping_interval)
                next_ping = now + self._ping_interval
            message = await pubsub.get_message(timeout=self._ping_interval / 2)
            if message is None:
                continue
            if message.get("type") == "pong":
                self._last_pong = loop.time()
            elif message.get("type") == "message":
                data = message["data"]
                result = self._on_message(data.decode() if isinstance(data, bytes) else data)
                if result is not None:
                    await result
