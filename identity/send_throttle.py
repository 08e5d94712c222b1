"""Named rate limiters for requests that mail or text an address the caller names (``email.reset``,
``email.confirmation``, ``phone.code``; ``ip.mail``, ``ip.sms``), counted in Redis.

A request is counted before anything is looked up, so an address without an account uses up its limit as
one with an account does: a refusal says nothing about who has an account.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from redis.asyncio import Redis

from identity.errors import TooManyRequests
from identity.redis_errors import redis_guard


@dataclass(frozen=True, slots=True)
class Limit:
    """A named limiter: at most ``count`` requests per identifier within a fixed ``window`` (seconds)."""

    name: str
    count: int
    window: int


class SendThrottle:
    """Counts the requests of one purpose per recipient and per client IP; refuses once either is used up.

    Both limiters are checked and counted in one script: requests arriving together on any number of
    instances never pass a limit, and a refused request counts in neither.  Limiters of the same name count
    together, whichever throttle holds them (``ip.mail`` is one budget for every mail an address asks for).
    """

    def __init__(self, redis: Redis, *, namespace: str, recipient: Limit, ip: Limit, error_key: str) -> None:
        self._redis = redis
        self._ns = namespace
        self._limits = (recipient, ip)
        self._error_key = error_key

    def keys(self, recipient: str, ip: str) -> list[str]:
        """The counters of the recipient's and the address's limiters.

        Recipients are kept as digests: the keys then hold no personal data and have a bounded length.
        """
        digest = hashlib.sha256(recipient.strip().lower().encode()).hexdigest()[:32]
        by_recipient, by_ip = self._limits
        return [f"{self._ns}:throttle:{by_recipient.name}:{digest}", f"{self._ns}:throttle:{by_ip.name}:{ip}"]

    async def admit(self, recipient: str, ip: str) -> None:
        """Count a request to send to ``recipient`` from ``ip``; raise :class:`TooManyRequests` (with the
        seconds until both limiters have room) when either is used up."""
        args = [value for limit in self._limits for value in (limit.count, limit.window)]
        async with redis_guard():
            retry_after = int(await self._redis.eval(_ADMIT, 2, *self.keys(recipient, ip), *args))
        if retry_after > 0:
            raise TooManyRequests(self._error_key, retry_after=retry_after)


# KEYS: the counters.  ARGV: each counter's limit and window, in KEYS' order.  Returns 0 when the request is
# admitted (counted in every counter, a counter's window starting with its first request), else the seconds
# until every used-up counter expires.  PTTL rounded up: TTL rounds to the nearest second, and a counter
# with less than half a second left would read 0, "admitted".
_ADMIT = """
local wait = 0
for i = 1, #KEYS do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if count >= tonumber(ARGV[2 * i - 1]) then
    local ms = redis.call('PTTL', KEYS[i])
    if ms < 0 then
      redis.call('EXPIRE', KEYS[i], ARGV[2 * i])
      ms = tonumber(ARGV[2 * i]) * 1000
    end
    wait = math.max(wait, math.ceil(ms / 1000), 1)
  end
end
if wait > 0 then return wait end
for i = 1, #KEYS do
  redis.call('INCR', KEYS[i])
  if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ARGV[2 * i]) end
end
return 0
"""
