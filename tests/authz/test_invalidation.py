"""The change listener (``authz/invalidation.py``) on the machine's Redis."""

from __future__ import annotations

import asyncio
import uuid

from redis.asyncio import Redis

from authz.invalidation import ChangeListener


async def test_a_stopped_listener_ends_even_when_its_cancellation_is_lost(redis_url: str) -> None:
    # redis-py can swallow a cancellation that races a read timeout.  Shutdown stops the listener, then
    # cancels it and waits 5 s at most: a listener that only the cancellation could end held every
    # `authz serve` worker that long.  Here the cancellation never comes at all.
    redis = Redis.from_url(redis_url, decode_responses=False)

    async def nothing() -> None:
        return None

    listener = ChangeListener(
        redis,
        f"t{uuid.uuid4().hex[:12]}",
        on_message=lambda _: None,
        on_resync=nothing,
        on_down=lambda: None,
        staleness=0.3,
    )
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.subscribed.wait(), timeout=5)
        listener.stop()
        await asyncio.wait_for(asyncio.shield(task), timeout=2)
        assert not listener.trusted()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await redis.aclose()
