"""The authenticator stage: the interface, the "not mine" sentinel and the subject directories."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from authz.decision import DecisionRequest, Principal
from authz.snapshots import MISSING, SnapshotCache
from identity.models import ServiceAccount, User
from identity.sessions import RedisSessionStore, SessionRecord

S = TypeVar("S", User, ServiceAccount)


class _NotMine:
    """The authenticator is not responsible for this request (different from "mine, and invalid")."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_MINE"


NOT_MINE = _NotMine()


class Authenticator(Protocol):
    """One way of proving who the caller is. Raises :class:`authz.decision.Denied` when it is invalid."""

    id: str

    async def authenticate(self, request: DecisionRequest) -> Principal | _NotMine: ...


def _principal(
    kind: str,
    uid: str,
    role: str,
    user_id: int | None,
    authenticator: str,
    credential: tuple[str, str] | None,
    **claims: object,
) -> Principal:
    """A principal with the subject claims Barong puts in the upstream JWT, in their fixed order, then the
    ``credential`` claim, if any."""
    order = ("uid", "username", "email", "referral_id", "role", "level", "state")
    values = {"uid": uid, "role": role, **claims}
    subject = tuple((name, values.get(name)) for name in order)
    return Principal(
        kind=kind,
        uid=uid,
        role=role,
        user_id=user_id,
        claims=subject if credential is None else (*subject, credential),
        authenticator=authenticator,
    )


def user_principal(user: User, authenticator: str, credential: tuple[str, str] | None = None) -> Principal:
    """The principal of a user, with the subject claims Barong puts in the upstream JWT and the claim of
    the credential it authenticated with: ``(SESSION_CLAIM, hash)`` or ``(API_KEY_CLAIM, kid)``
    (:mod:`identity.callers`: the service's own APIs refuse a token whose credential has ended)."""
    return _principal(
        "user",
        user.uid,
        user.role,
        user.id,
        authenticator,
        credential,
        username=user.username,
        email=user.email,
        referral_id=user.referral_id,
        level=user.level,
        state=user.state,
    )


def service_account_principal(
    account: ServiceAccount, authenticator: str, credential: tuple[str, str] | None = None
) -> Principal:
    """The principal of a service account: the user claims' shape, without username and referrer."""
    return _principal(
        "service_account",
        account.uid,
        account.role,
        None,
        authenticator,
        credential,
        email=account.email,
        level=account.level,
        state=account.state,
    )


class _Subjects(Protocol[S]):
    async def get_by_uid(self, uid: str) -> S | None: ...

    async def get_by_id(self, id_: int, /) -> S | None: ...


class SubjectDirectory(Generic[S]):
    """Subjects (users, service accounts) by uid or id, from the in-process snapshot cache or SQL
    (``user:<uid>`` invalidates)."""

    def __init__(self, subjects: _Subjects[S], cache: SnapshotCache[str, S | None]) -> None:
        self._subjects = subjects
        self._cache = cache
        self._uid_by_id: dict[int, str] = {}  # ids and uids never change, so this map needs no invalidation

    async def by_uid(self, uid: str) -> S | None:
        cached = self._cache.get(uid)
        if cached is not MISSING:
            return cached  # type: ignore[return-value]
        generation = self._cache.generation
        subject = await self._subjects.get_by_uid(uid)
        self._cache.put(uid, subject, generation)
        return subject

    async def by_id(self, subject_id: int) -> S | None:
        uid = self._uid_by_id.get(subject_id)
        if uid is not None:
            return await self.by_uid(uid)
        generation = self._cache.generation
        subject = await self._subjects.get_by_id(subject_id)
        if subject is not None:
            if len(self._uid_by_id) > 1_000_000:
                self._uid_by_id.clear()
            self._uid_by_id[subject_id] = subject.uid  # type: ignore[attr-defined]
            self._cache.put(subject.uid, subject, generation)  # type: ignore[attr-defined]
        return subject


async def cached_session(
    sessions: RedisSessionStore,
    cache: SnapshotCache[str, SessionRecord | None],
    digest: str,
    *,
    fresh: bool = False,
) -> SessionRecord | None:
    """Session ``digest`` from the in-process snapshot cache, or from Redis (always, when ``fresh``); the
    cookie and access-token authenticators share the cache, which ``session:<hash>`` messages invalidate."""
    if not fresh:
        cached = cache.get(digest)
        if cached is not MISSING:
            return cached  # type: ignore[return-value]
    generation = cache.generation
    record = await sessions.get(digest)
    cache.put(digest, record, generation)
    return record
