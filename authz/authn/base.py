"""The authenticator stage: the interface, the "not mine" sentinel and the subject directories."""

from __future__ import annotations

from typing import Protocol

from authz.decision import DecisionRequest, Principal
from authz.snapshots import MISSING, SnapshotCache
from identity.models import ServiceAccount, User
from identity.service_accounts import SqlServiceAccountRepository
from identity.users import SqlUserRepository


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


def user_principal(user: User, authenticator: str) -> Principal:
    """The principal of a user, with the subject claims Barong puts in the upstream JWT."""
    claims = (
        ("uid", user.uid),
        ("username", user.username),
        ("email", user.email),
        ("referral_id", user.referral_id),
        ("role", user.role),
        ("level", user.level),
        ("state", user.state),
    )
    return Principal(
        kind="user", uid=user.uid, role=user.role, user_id=user.id, claims=claims, authenticator=authenticator
    )


def service_account_principal(account: ServiceAccount, authenticator: str) -> Principal:
    """The principal of a service account: the user claims' shape, without username and referrer."""
    claims = (
        ("uid", account.uid),
        ("username", None),
        ("email", account.email),
        ("referral_id", None),
        ("role", account.role),
        ("level", account.level),
        ("state", account.state),
    )
    return Principal(
        kind="service_account",
        uid=account.uid,
        role=account.role,
        user_id=None,
        claims=claims,
        authenticator=authenticator,
    )


class SubjectDirectory:
    """Users by uid or id, from the in-process snapshot cache or SQL (``user:<uid>`` invalidates)."""

    def __init__(self, users: SqlUserRepository, cache: SnapshotCache[str, User | None]) -> None:
        self._users = users
        self._cache = cache
        self._uid_by_id: dict[int, str] = {}  # ids and uids never change, so this map needs no invalidation

    async def by_uid(self, uid: str) -> User | None:
        cached = self._cache.get(uid)
        if cached is not MISSING:
            return cached  # type: ignore[return-value]
        generation = self._cache.generation
        user = await self._users.get_by_uid(uid)
        self._cache.put(uid, user, generation)
        return user

    async def by_id(self, user_id: int) -> User | None:
        uid = self._uid_by_id.get(user_id)
        if uid is not None:
            return await self.by_uid(uid)
        generation = self._cache.generation
        user = await self._users.get_by_id(user_id)
        if user is not None:
            if len(self._uid_by_id) > 1_000_000:
                self._uid_by_id.clear()
            self._uid_by_id[user_id] = user.uid
            self._cache.put(user.uid, user, generation)
        return user


class ServiceAccountDirectory:
    """Service accounts by id, cached as users are (``user:<service account uid>`` invalidates)."""

    def __init__(
        self, accounts: SqlServiceAccountRepository, cache: SnapshotCache[str, ServiceAccount | None]
    ) -> None:
        self._accounts = accounts
        self._cache = cache
        self._uid_by_id: dict[int, str] = {}  # ids and uids never change

    async def by_id(self, account_id: int) -> ServiceAccount | None:
        uid = self._uid_by_id.get(account_id)
        if uid is not None:
            cached = self._cache.get(uid)
            if cached is not MISSING:
                return cached  # type: ignore[return-value]
        generation = self._cache.generation
        account = await self._accounts.get_by_id(account_id)
        if account is not None:
            if len(self._uid_by_id) > 1_000_000:
                self._uid_by_id.clear()
            self._uid_by_id[account_id] = account.uid
            self._cache.put(account.uid, account, generation)
        return account
