"""In-process caches that are only trusted while the invalidation channel is up.

``SnapshotCache`` holds values (sessions, users, API keys) for a short TTL; a change message removes an
entry at once, and whenever the listener is down the cache neither answers nor stores, so every lookup
goes to Redis or SQL (and fails closed if they are down).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


class SnapshotCache(Generic[K, V]):
    """A bounded TTL cache gated by ``is_trusted`` (the invalidation channel's health)."""

    def __init__(
        self,
        is_trusted: Callable[[], bool],
        *,
        ttl: float,
        max_size: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._trusted = is_trusted
        self._ttl = ttl
        self._max = max_size
        self._clock = clock
        self._items: dict[K, tuple[V, float]] = {}
        # Bumped by every invalidation: a value fetched before an invalidation must not be stored after it.
        self._generation = 0

    @property
    def generation(self) -> int:
        """Take this before fetching a value; pass it to :meth:`put`."""
        return self._generation

    def get(self, key: K) -> V | _Missing:
        if not self._trusted():
            return MISSING
        item = self._items.get(key)
        if item is None:
            return MISSING
        if item[1] < self._clock():
            self._items.pop(key, None)
            return MISSING
        return item[0]

    def put(self, key: K, value: V, generation: int) -> None:
        if generation != self._generation or not self._trusted():
            return
        if len(self._items) >= self._max:
            self._items.clear()
        self._items[key] = (value, self._clock() + self._ttl)

    def invalidate(self, key: K) -> None:
        self._generation += 1
        self._items.pop(key, None)

    def clear(self) -> None:
        self._generation += 1
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
