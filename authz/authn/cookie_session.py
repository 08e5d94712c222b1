"""The cookie-session authenticator (barong-behavior.md §2.4): CSRF, session, UA/IP pinning, sliding expiry."""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache

from authz.authn.base import SubjectDirectory, _NotMine, cached_session, user_principal
from authz.decision import DecisionRequest, Denied, Principal
from authz.snapshots import SnapshotCache
from identity.activity_log import header_text
from identity.callers import SESSION_CLAIM
from identity.models import User
from identity.sessions import COOKIE, RedisSessionStore, SessionRecord, session_hash

#: The only verbs a cookie alone may send, spelt exactly so.  An allow-list: any other verb (WebDAV's
#: PROPPATCH or MKCOL, CONNECT, TRACE, a custom or lower-case token a reader passes on) needs the token.
CSRF_EXEMPT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@lru_cache(maxsize=65536)
def _pinned_network(user_ip: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The /16 (IPv4) or /96 (IPv6) around the login address that later requests must come from."""
    try:
        address = ipaddress.ip_address(user_ip)
    except ValueError:
        return None
    prefix = 16 if address.version == 4 else 96
    return ipaddress.ip_network(f"{address}/{prefix}", strict=False)


@lru_cache(maxsize=65536)
def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(ip)
    except ValueError:
        return None


def same_network(login_ip: str, client_ip: str) -> bool:
    network = _pinned_network(login_ip)
    address = _address(client_ip)
    return network is not None and address is not None and address in network


class CookieSessionAuthenticator:
    """Responsible for every request that the other authenticators leave (Barong's default branch).

    Session records are served from the in-process cache while the change channel is trusted (subscribed,
    and Redis answered a ping within the Redis timeout): a logout or revocation drops the cached copy on
    this instance at once and on every other within the pub/sub delay, and when Redis stops answering the
    cache is bypassed, so the decision goes to Redis and fails closed (503).  A session that looks invalid
    is re-read from Redis before it is destroyed: the cached copy may predate another instance's slide.
    """

    id = "cookie_session"

    def __init__(
        self,
        sessions: RedisSessionStore,
        subjects: SubjectDirectory[User],
        cache: SnapshotCache[str, SessionRecord | None],
        *,
        cookie_name: str,
        csrf_protection: bool,
        expire_time: int,
        slide_interval: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._subjects = subjects
        self._cache = cache
        self._cookie = cookie_name
        self._csrf = csrf_protection
        self._expire = expire_time
        # Slide only when the stored deadline lags "now + expire" by more than this (coalesced writes).
        self._slide_interval = min(slide_interval, max(1, expire_time // 10))
        self._clock = clock

    async def _record(self, digest: str, *, fresh: bool = False) -> SessionRecord | None:
        return await cached_session(self._sessions, self._cache, digest, fresh=fresh)

    def _valid(self, record: SessionRecord, request: DecisionRequest, now: float) -> bool:
        agent = request.headers.get("User-Agent", "")
        return (
            # A non-UTF-8 agent was stored as its header_text: compared so only when it differs (rare).
            (record.user_agent == agent or (not agent.isascii() and record.user_agent == header_text(agent)))
            and now < record.expire_time
            and same_network(record.user_ip, request.client_ip)
        )

    async def authenticate(self, request: DecisionRequest) -> Principal | _NotMine:
        session_id = request.cookies.get(self._cookie)
        digest = session_hash(session_id) if session_id else None
        record = await self._record(digest) if digest else None

        if self._csrf and request.method not in CSRF_EXEMPT_METHODS:
            token = request.headers.get("X-CSRF-Token")
            if not token:
                raise Denied(401, "authz.missing_csrf_token")
            expected = record.csrf_token if record else ""
            if not hmac.compare_digest(token.encode("utf-8", "surrogateescape"), expected.encode()):
                raise Denied(401, "authz.csrf_token_mismatch")

        if record is None or digest is None or record.kind != COOKIE:
            raise Denied(401, "authz.invalid_session")

        now = self._clock()
        if not self._valid(record, request, now):
            record = await self._record(digest, fresh=True)
            if record is None:
                raise Denied(401, "authz.invalid_session")
            if not self._valid(record, request, now):
                await self._sessions.destroy(digest, record.uid)
                raise Denied(401, "authz.client_session_mismatch")

        user = await self._subjects.by_uid(record.uid)
        if user is None:
            await self._sessions.destroy(digest, record.uid)
            raise Denied(401, "authz.invalid_session")

        deadline = int(now) + self._expire
        if deadline - record.expire_time >= self._slide_interval:
            generation = self._cache.generation  # taken before the write: a revocation meanwhile wins
            stored = await self._sessions.slide(record, deadline)
            if stored is not None:
                self._cache.put(digest, replace(record, expire_time=stored), generation)
            else:
                self._cache.invalidate(digest)
                raise Denied(401, "authz.invalid_session")

        if not user.usable:
            raise Denied(401, "authz.user_not_active")
        # The session's hash as ``sid``: the service's own APIs refuse the JWT once the session ends.
        return user_principal(user, self.id, (SESSION_CLAIM, digest))
