"""Browser sessions in Redis (``RedisSessionStore``).

The cookie carries a random 128-bit session id; Redis only ever sees ``sha256(id)``, so a dump of Redis
gives no usable cookie.  Records are hashes at ``<ns>:session:<hash>`` with a real TTL; every user has an
index set ``<ns>:user_sessions:<uid>`` of its session hashes so that all its sessions can be listed and
revoked.  Revocations are announced on the change channel so that instances drop cached copies at once.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from identity.changes import ChangePublisher
from identity.redis_errors import redis_guard


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One live session as stored (``expire_time`` is the sliding idle deadline, epoch seconds)."""

    hash: str
    uid: str
    user_ip: str
    user_agent: str
    csrf_token: str
    expire_time: int
    created_at: int

    def as_mapping(self) -> dict[str, str | int]:
        return {
            "uid": self.uid,
            "user_ip": self.user_ip,
            "user_agent": self.user_agent,
            "csrf_token": self.csrf_token,
            "expire_time": self.expire_time,
            "created_at": self.created_at,
        }


class RedisSessionStore:
    """Creates, reads, slides and revokes sessions."""

    def __init__(
        self,
        redis: Redis,
        changes: ChangePublisher,
        *,
        namespace: str,
        expire_time: int,
        ttl_slack: int = 120,
    ) -> None:
        self._redis = redis
        self._changes = changes
        self._ns = namespace
        self.expire_time = expire_time
        # Storage TTL: the idle lifetime plus slack for coalesced slides; Redis drops dead sessions itself.
        self._ttl = expire_time + ttl_slack

    def _key(self, digest: str) -> str:
        return f"{self._ns}:session:{digest}"

    def _index(self, uid: str) -> str:
        return f"{self._ns}:user_sessions:{uid}"

    async def create(self, uid: str, user_ip: str, user_agent: str, *, now: float | None = None) -> tuple[str, SessionRecord]:
        """Open a session; returns the raw id (for the cookie, never stored) and the record."""
        now_s = int(time.time() if now is None else now)
        session_id = secrets.token_hex(16)
        record = SessionRecord(
            hash=session_hash(session_id),
            uid=uid,
            user_ip=user_ip,
            user_agent=user_agent or "",
            csrf_token=secrets.token_hex(10),
            expire_time=now_s + self.expire_time,
            created_at=now_s,
        )
        async with redis_guard():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._key(record.hash), mapping=record.as_mapping())
                pipe.expire(self._key(record.hash), self._ttl)
                pipe.sadd(self._index(uid), record.hash)
                pipe.expire(self._index(uid), self._ttl)
                await pipe.execute()
        return session_id, record

    async def get(self, digest: str) -> SessionRecord | None:
        async with redis_guard():
            raw = await self._redis.hgetall(self._key(digest))
        return _record(digest, raw)

    async def slide(self, record: SessionRecord, expire_time: int) -> bool:
        """Move the idle deadline to ``expire_time`` and refresh the TTLs; False if the session is gone."""
        key = self._key(record.hash)
        async with redis_guard():
            async with self._redis.pipeline(transaction=False) as pipe:
                # Only slide a record that still exists: a concurrent logout must not be resurrected.
                pipe.eval(_SLIDE_SCRIPT, 1, key, expire_time, self._ttl)
                pipe.expire(self._index(record.uid), self._ttl)
                slid, _ = await pipe.execute()
        return bool(slid)

    async def list_for_user(self, uid: str) -> list[SessionRecord]:
        async with redis_guard():
            digests = await self._redis.smembers(self._index(uid))
        records = []
        stale = []
        for digest in sorted(digests):
            record = await self.get(digest)
            if record is None:
                stale.append(digest)
            else:
                records.append(record)
        if stale:
            async with redis_guard():
                await self._redis.srem(self._index(uid), *stale)
        return records

    async def revoke_where(self, condition: Callable[[SessionRecord], bool], *, batch: int = 500) -> int:
        """Revoke every live session (of every user) for which ``condition`` holds; returns how many."""
        revoked = 0
        prefix = self._key("")
        async with redis_guard():
            keys = [key async for key in self._redis.scan_iter(match=f"{prefix}*", count=batch)]
        for start in range(0, len(keys), batch):
            chunk = keys[start : start + batch]
            async with redis_guard():
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key in chunk:
                        pipe.hgetall(key)
                    rows = await pipe.execute()
            for key, raw in zip(chunk, rows, strict=True):
                record = _record(key[len(prefix) :], raw)
                if record is not None and condition(record):
                    await self.destroy(record.hash, record.uid)
                    revoked += 1
        return revoked

    async def destroy(self, digest: str, uid: str | None = None) -> bool:
        """Revoke one session; True when it existed."""
        async with redis_guard():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._key(digest))
                if uid:
                    pipe.srem(self._index(uid), digest)
                deleted, *_ = await pipe.execute()
        await self._changes.sessions_revoked([digest])
        return bool(deleted)

    async def destroy_all(self, uid: str, *, keep: str | None = None) -> int:
        """Revoke every session of ``uid`` except ``keep`` (a session hash); returns how many."""
        async with redis_guard():
            digests = [d for d in await self._redis.smembers(self._index(uid)) if d != keep]
            if not digests:
                return 0
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(*(self._key(d) for d in digests))
                pipe.srem(self._index(uid), *digests)
                await pipe.execute()
        await self._changes.sessions_revoked(digests)
        return len(digests)


def _record(digest: str, raw: dict[str, str]) -> SessionRecord | None:
    if not raw or "uid" not in raw:
        return None
    try:
        return SessionRecord(
            hash=digest,
            uid=raw["uid"],
            user_ip=raw.get("user_ip", ""),
            user_agent=raw.get("user_agent", ""),
            csrf_token=raw.get("csrf_token", ""),
            expire_time=int(raw.get("expire_time", 0)),
            created_at=int(raw.get("created_at", 0)),
        )
    except ValueError:
        return None


# HSET only if the session still exists, then refresh its TTL (atomic: no resurrection after logout).
_SLIDE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'expire_time', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
