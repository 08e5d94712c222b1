"""The mail queue in Redis, shared by every worker process.

Layout, all under ``<ns>:mail:``:

- ``messages``: hash, message id -> JSON ``{"to", "template", "raw", "attempts"}`` (the rendered
  RFC 5322 text, not the template context, so a template changed meanwhile does not matter);
- ``due``: sorted set of message ids waiting for delivery, scored by the time they are due;
- ``leased``: sorted set of ids being delivered, scored by the end of the worker's lease.

A worker claims a message with one script that moves its id from ``due`` to ``leased``, so exactly one
worker gets it. The same script first puts ids whose lease ran out (their worker died mid-delivery) back
into ``due``, so a message is not lost with its process; it may then be delivered twice, never zero times.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from identity.redis_errors import redis_guard

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueuedMail:
    """One rendered message and how often its delivery was tried."""

    to: str
    template: str
    raw: str
    attempts: int = 0
    id: str = ""

    def encode(self) -> str:
        """The JSON stored in Redis (the id is the hash field, not part of the value)."""
        fields = {"to": self.to, "template": self.template, "raw": self.raw, "attempts": self.attempts}
        return orjson.dumps(fields).decode()

    @classmethod
    def decode(cls, mail_id: str, value: str) -> QueuedMail:
        """Parse a stored value; raise ``ValueError`` (or ``KeyError``/``TypeError``) when it is not one."""
        fields = orjson.loads(value)
        return cls(
            to=str(fields["to"]),
            template=str(fields["template"]),
            raw=str(fields["raw"]),
            attempts=int(fields["attempts"]),
            id=mail_id,
        )


class RedisMailQueue:
    """Due-time ordered queue of mails with leases, shared by all processes through Redis.

    ``lease`` (seconds) must exceed the longest delivery attempt; after it, another worker takes over.
    Times are passed in by the caller (the mailer's clock), so tests can move them by hand.
    """

    def __init__(self, redis: Redis, namespace: str, *, lease: float = 300.0) -> None:
        self._redis = redis
        self._lease = lease
        prefix = f"{namespace}:mail"
        self.keys = (f"{prefix}:due", f"{prefix}:leased", f"{prefix}:messages")
        self._claim = redis.register_script(_CLAIM)
        self._reschedule = redis.register_script(_RESCHEDULE)

    async def push(self, mail: QueuedMail, due: float) -> str:
        """Enqueue a new message to be delivered from ``due`` on; return its id."""
        mail_id = uuid.uuid4().hex
        due_key, _, messages = self.keys
        async with redis_guard(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(messages, mail_id, mail.encode())
            pipe.zadd(due_key, {mail_id: due})
            await pipe.execute()
        return mail_id

    async def claim(self, now: float) -> QueuedMail | None:
        """Lease the message due first (due at or before ``now``), or return ``None`` when none is due.

        An entry that cannot be decoded is logged and dropped, so it cannot block the queue.
        """
        while True:
            async with redis_guard():
                claimed = await self._claim(keys=self.keys, args=[repr(now), repr(now + self._lease)])
            if claimed is None:
                return None
            mail_id, value = claimed
            try:
                return QueuedMail.decode(mail_id, value)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("dropping undecodable mail queue entry %s: %s", mail_id, exc)
                await self.remove(mail_id)

    async def retry(self, mail: QueuedMail, due: float) -> None:
        """Give a leased message back to be tried again from ``due`` on (with its new attempt count).

        Nothing happens when the lease was lost: another worker already owns the message.
        """
        async with redis_guard():
            await self._reschedule(keys=self.keys, args=[mail.id, mail.encode(), repr(due)])

    async def remove(self, mail_id: str) -> None:
        """Forget a message: delivered, or given up on."""
        due_key, leased, messages = self.keys
        async with redis_guard(), self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(due_key, mail_id)
            pipe.zrem(leased, mail_id)
            pipe.hdel(messages, mail_id)
            await pipe.execute()

    async def size(self) -> int:
        """How many messages are queued or being delivered."""
        async with redis_guard():
            return int(await self._redis.hlen(self.keys[2]))


# KEYS: due, leased, messages.  ARGV: now, lease end.
# Expired leases first (their worker is presumed dead), then the earliest due id whose message exists;
# an id without a message (removed by a worker whose lease had run out) is discarded on the way.
_CLAIM = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], ARGV[1], id)
end
while true do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
  if #ids == 0 then return false end
  local id = ids[1]
  redis.call('ZREM', KEYS[1], id)
  local value = redis.call('HGET', KEYS[3], id)
  if value then
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    return {id, value}
  end
end
"""

# KEYS: due, leased, messages.  ARGV: id, new value, due time.  Only the lease holder may reschedule.
_RESCHEDULE = """
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
"""
