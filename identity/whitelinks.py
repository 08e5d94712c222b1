"""Whitelink tokens (barong-behavior.md §7.2–7.3): a link that whitelists the address it is opened from.

Admins create a token valid for a while; anyone holding it calls ``POST /identity/users/access`` and their
client IP gets an enabled ``whitelist`` restriction.  The token is not consumed: it works until it expires.
"""

from __future__ import annotations

import hashlib
import secrets

from redis.asyncio import Redis

from identity.redis_errors import redis_guard


class RedisWhitelinkTokens:
    """Whitelink tokens kept in Redis with their lifetime as TTL."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        self._redis = redis
        self._ns = namespace

    def _key(self, token: str) -> str:
        return f"{self._ns}:whitelink:{token}"

    async def create(self, lifetime_seconds: int) -> str:
        """A new token (Barong's shape: sha256 hex of random data), active for ``lifetime_seconds``."""
        token = hashlib.sha256(secrets.token_bytes(32)).hexdigest()
        async with redis_guard():
            await self._redis.set(self._key(token), "active", ex=lifetime_seconds)
        return token

    async def active(self, token: str) -> bool:
        if not token or len(token) > 128:
            return False
        async with redis_guard():
            return await self._redis.get(self._key(token)) == "active"
