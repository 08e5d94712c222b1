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
    # A cookie's bytes beyond ASCII arrive as aiohttp decodes headers (UTF-8 with surrogate escapes):
    # encoded back the same way they hash to no session instead of failing.
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).hexdigest()


#: A browser session: the cookie carries its id (Barong's identity API).
COOKIE = "cookie"
#: A token session: access and refresh tokens refer to it (the Financelime-compatible API).
TOKEN = "token"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One live session as stored (``expire_time`` is the sliding idle deadline, epoch seconds).

    ``hash`` is also the session's public id (``sessionID`` of the token API): it is a digest, so showing
    it reveals nothing that opens the session.
    """

    hash: str
    uid: str
    user_ip: str
    user_agent: str
    csrf_token: str
    expire_time: int
    created_at: int
    kind: str = COOKIE
    updated_at: int = 0  # last refresh of a token session (cookie sessions: derived from expire_time)
    platform: str = ""  # the client's device platform (token sessions)
    client_id: str = ""  # the client application (token sessions)

    def as_mapping(self) -> dict[str, str | int]:
        return {
            "uid": self.uid,
            "user_ip": self.user_ip,
            "user_agent": self.user_agent,
            "csrf_token": self.csrf_token,
            "expire_time": self.expire_time,
            "created_at": self.created_at,
            "kind": self.kind,
            "updated_at": self.updated_at or self.created_at,
            "platform": self.platform,
            "client_id": self.client_id,
        }


@dataclass(frozen=True, slots=True)
class Rotation:
    """What became of a refresh token handed in for rotation."""

    outcome: str  # "rotated" | "unknown" (never issued, expired, or its session ended) | "reused"
    session: SessionRecord | None = None


class RedisSessionStore:
    """Creates, reads, slides and revokes sessions."""

    def __init__(
        self,
        redis: Redis,
        changes: ChangePublisher,
        *,
        namespace: str,
        expire_time: int,
        token_expire_time: int = 0,
        ttl_slack: int = 120,
    ) -> None:
        self._redis = redis
        self._changes = changes
        self._ns = namespace
        self.expire_time = expire_time
        self.token_expire_time = token_expire_time or expire_time
        # Storage TTL: the idle lifetime plus slack for coalesced slides; Redis drops dead sessions itself.
        self._ttl = expire_time + ttl_slack
        self._token_ttl = self.token_expire_time + ttl_slack
        # The per-user index outlives the longest session it may list.
        self._index_ttl = max(self._ttl, self._token_ttl)

    def _key(self, digest: str) -> str:
        return f"{self._ns}:session:{digest}"

    def _index(self, uid: str) -> str:
        return f"{self._ns}:user_sessions:{uid}"

    def _refresh_key(self, token: str) -> str:
        return f"{self._ns}:refresh:{hashlib.sha256(token.encode()).hexdigest()}"

    async def create(
        self,
        uid: str,
        user_ip: str,
        user_agent: str,
        *,
        now: float | None = None,
        kind: str = COOKIE,
        platform: str = "",
        client_id: str = "",
        refresh_token: str | None = None,
    ) -> tuple[str, SessionRecord]:
        """Open a session; returns the raw id (for the cookie, never stored) and the record.

        A token session (``kind=TOKEN``) lives ``token_expire_time`` seconds after its last refresh, and its
        first ``refresh_token`` is stored (as a digest) in the same transaction.
        """
        now_s = int(time.time() if now is None else now)
        token = kind == TOKEN
        lifetime, ttl = (self.token_expire_time, self._token_ttl) if token else (self.expire_time, self._ttl)
        session_id = secrets.token_hex(16)
        record = SessionRecord(
            hash=session_hash(session_id),
            uid=uid,
            user_ip=user_ip,
            user_agent=user_agent or "",
            csrf_token=secrets.token_hex(10),
            expire_time=now_s + lifetime,
            created_at=now_s,
            kind=kind,
            updated_at=now_s,
            platform=platform,
            client_id=client_id,
        )
        async with redis_guard(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key(record.hash), mapping=record.as_mapping())
            pipe.expire(self._key(record.hash), ttl)
            pipe.sadd(self._index(uid), record.hash)
            pipe.expire(self._index(uid), self._index_ttl)
            if refresh_token is not None:
                refresh = self._refresh_key(refresh_token)
                pipe.hset(refresh, mapping={"session": record.hash, "state": "current"})
                pipe.expire(refresh, ttl)
            await pipe.execute()
        return session_id, record

    async def rotate_refresh(
        self, old_token: str, new_token: str, user_ip: str, *, now: float | None = None
    ) -> Rotation:
        """Exchange a token session's current refresh token for ``new_token``, atomically.

        The session's idle deadline moves to now + ``token_expire_time``.  A refresh token is good once: one
        handed in again (a copy stolen and used, or the legitimate client after the thief) ends the session,
        since nobody can tell which of the two holders is the rightful one.
        """
        now_s = int(time.time() if now is None else now)
        async with redis_guard():
            result = await self._redis.eval(
                _ROTATE_SCRIPT,
                2,
                self._refresh_key(old_token),
                self._refresh_key(new_token),
                self._key(""),
                now_s,
                now_s + self.token_expire_time,
                self._token_ttl,
                user_ip,
            )
        outcome, digest = result[0], result[1] if len(result) > 1 else ""
        if outcome == "reused":
            record = await self.get(digest)
            await self.destroy(digest, record.uid if record else None)
            return Rotation("reused", record)
        if outcome != "rotated":
            return Rotation("unknown")
        record = await self.get(digest)
        if record is None:  # revoked between the rotation and this read
            return Rotation("unknown")
        async with redis_guard():
            await self._redis.expire(self._index(record.uid), self._index_ttl)
        return Rotation("rotated", record)

    async def get(self, digest: str) -> SessionRecord | None:
        async with redis_guard():
            raw = await self._redis.hgetall(self._key(digest))
        return _record(digest, raw)

    async def slide(self, record: SessionRecord, expire_time: int) -> int | None:
        """Move the idle deadline forward to ``expire_time`` and refresh the TTLs.

        Returns the deadline now stored, which a concurrent slide to a later time keeps (a request that read
        "now" earlier but writes last never shortens the session), or None if the session is gone.
        """
        key = self._key(record.hash)
        async with redis_guard(), self._redis.pipeline(transaction=False) as pipe:
            # Only slide a record that still exists: a concurrent logout must not be resurrected.
            pipe.eval(_SLIDE_SCRIPT, 1, key, expire_time, self._ttl)
            pipe.expire(self._index(record.uid), self._index_ttl)
            stored, _ = await pipe.execute()
        return int(stored) or None

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
            async with redis_guard(), self._redis.pipeline(transaction=False) as pipe:
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
        async with redis_guard(), self._redis.pipeline(transaction=True) as pipe:
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
            kind=raw.get("kind", COOKIE),
            updated_at=int(raw.get("updated_at", 0)),
            platform=raw.get("platform", ""),
            client_id=raw.get("client_id", ""),
        )
    except ValueError:
        return None


# Raise the deadline (never lower it) and refresh the TTL, only if the session still exists: atomic, so no
# logout is undone and no late writer shortens the session.  Returns the stored deadline, 0 when gone.
_SLIDE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local stored = tonumber(redis.call('HGET', KEYS[1], 'expire_time') or '0') or 0
local wanted = tonumber(ARGV[1])
if wanted > stored then
  redis.call('HSET', KEYS[1], 'expire_time', ARGV[1])
  stored = wanted
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return stored
"""

# Refresh-token rotation.  KEYS: the old token's entry, the new token's entry.  ARGV: the session key prefix,
# now, the new idle deadline, the TTL, the client's address.  An entry is {session, state}; a "used" entry
# stays until its TTL so that a second use is recognised as reuse.
_ROTATE_SCRIPT = """
local entry = redis.call('HMGET', KEYS[1], 'session', 'state')
local digest, state = entry[1], entry[2]
if not digest then return {'unknown'} end
local session = ARGV[1] .. digest
if state ~= 'current' then return {'reused', digest} end
if redis.call('HGET', session, 'kind') ~= 'token' then return {'unknown'} end
if tonumber(redis.call('HGET', session, 'expire_time') or '0') <= tonumber(ARGV[2]) then
  return {'unknown'}
end
redis.call('HSET', KEYS[1], 'state', 'used')
redis.call('HSET', KEYS[2], 'session', digest, 'state', 'current')
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('HSET', session, 'expire_time', ARGV[3], 'updated_at', ARGV[2], 'user_ip', ARGV[5])
redis.call('EXPIRE', session, ARGV[4])
return {'rotated', digest}
"""
