"""Service accounts (barong-behavior.md §5.3): accounts owned by a user that act only through API keys.

``SqlServiceAccountRepository`` keeps the ``service_accounts`` table with Barong's defaults (uid ``SI`` + 10
hex, e-mail ``<owner local>+<uid>@<owner domain>``, level and state copied from the owner).
``OwnedServiceAccounts`` lets a user list its service accounts and manage their keys with its own TOTP code,
reusing the user API-key service with the holder type ``ServiceAccount``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from identity.db import api_keys, service_accounts, users, utcnow
from identity.errors import Conflict, RecordNotFound, ValidationFailed
from identity.models import SERVICE_ACCOUNT_HOLDER, SERVICE_ACCOUNT_STATES, ApiKey, ServiceAccount, User
from identity.permissions import SqlPermissionRepository
from identity.storage import reading, transaction
from identity.user_fields import _EMAIL, MAX_EMAIL
from identity.users import new_uid

if TYPE_CHECKING:  # types only: the API-key service is built by the composition root
    from identity.api_key_service import ApiKeyService
    from identity.paging import Page

UID_PREFIX = "SI"
DISABLED = "disabled"
NOT_UNIQUE = "email_or_uid.not_uniq"
KEYS_PREFIX = "resource.service_accounts"  # TOTP guard, ordering and parameter keys
NOT_OWNED = "resource.service_account.doesnt_exist"


def _account(row: Row[Any]) -> ServiceAccount:
    return ServiceAccount(
        id=row.id,
        uid=row.uid,
        email=row.email,
        role=row.role,
        level=row.level,
        state=row.state,
        owner_id=row.owner_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def default_email(owner: User, uid: str) -> str:
    """Barong's ``<owner local part>+<uid>@<owner domain>``."""
    local, _, domain = owner.email.rpartition("@")
    return f"{local}+{uid}@{domain}"


def announcements(account: ServiceAccount, deactivated_kids: list[str]) -> list[str]:
    """The change messages after ``account`` changed and its keys ``deactivated_kids`` were turned off."""
    return [f"user:{account.uid}", *(f"apikey:{kid}" for kid in deactivated_kids)]


class SqlServiceAccountRepository:
    """Reads and writes the ``service_accounts`` table (the caller announces: see :func:`announcements`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self,
        owner: User | None,
        role: str,
        email: str | None = None,
        uid: str | None = None,
        level: int | None = None,
        state: str | None = None,
    ) -> ServiceAccount:
        """A new service account; ``role`` must have permissions, e-mail and uid must be free among users too.

        Raises ``ValidationFailed`` (``role.doesnt_exist``, ``email.invalid``, ``email.blank``,
        ``state.invalid``) or ``Conflict("email_or_uid.not_uniq")``.
        """
        uid = uid or new_uid(UID_PREFIX)
        if email is None and owner is not None:
            email = default_email(owner, uid)
        problems = []
        if not email:
            problems.append("email.blank")
        elif len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email):
            problems.append("email.invalid")
        state = state or (owner.state if owner is not None else "pending")
        if state not in SERVICE_ACCOUNT_STATES:
            problems.append("state.invalid")
        if problems:
            raise ValidationFailed(problems)
        now = utcnow()
        values = dict(
            uid=uid,
            email=email,
            role=role,
            level=level if level is not None else (owner.level if owner is not None else 0),
            state=state,
            owner_id=owner.id if owner is not None else None,
            created_at=now,
            updated_at=now,
        )
        async with transaction(self._engine, conflict_key=NOT_UNIQUE) as conn:
            await self._check_role(conn, role)
            if await self._taken(conn, str(email), uid):
                raise Conflict(NOT_UNIQUE)
            await conn.execute(service_accounts.insert().values(**values))
        account = await self.get_by_uid(uid)
        assert account is not None
        return account

    @staticmethod
    async def _check_role(conn: AsyncConnection, role: str) -> None:
        # Barong: a role exists when the permissions table names it.
        if not await SqlPermissionRepository.has_role_in(conn, role):
            raise ValidationFailed("role.doesnt_exist")

    @staticmethod
    async def _taken(conn: AsyncConnection, email: str, uid: str) -> bool:
        """Whether a user or a service account already has this e-mail (any case) or uid."""
        for table in (users, service_accounts):
            clash = or_(func.lower(table.c.email) == email.lower(), table.c.uid == uid)
            if await conn.scalar(select(table.c.id).where(clash).limit(1)) is not None:
                return True
        return False

    async def get_by_uid(self, uid: str) -> ServiceAccount | None:
        async with reading(self._engine) as conn:
            row = (await conn.execute(select(service_accounts).where(service_accounts.c.uid == uid))).first()
        return _account(row) if row else None

    async def get_by_id(self, account_id: int) -> ServiceAccount | None:
        async with reading(self._engine) as conn:
            row = (
                await conn.execute(select(service_accounts).where(service_accounts.c.id == account_id))
            ).first()
        return _account(row) if row else None

    async def list_for_owner(self, owner_id: int) -> list[ServiceAccount]:
        query = (
            select(service_accounts)
            .where(service_accounts.c.owner_id == owner_id)
            .order_by(service_accounts.c.id)
        )
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [_account(row) for row in rows]

    async def list_all(self) -> list[ServiceAccount]:
        async with reading(self._engine) as conn:
            rows = (await conn.execute(select(service_accounts).order_by(service_accounts.c.id))).all()
        return [_account(row) for row in rows]

    async def update(
        self, uid: str, *, state: str | None = None, role: str | None = None
    ) -> tuple[ServiceAccount, list[str]] | None:
        """Set the state and/or role; returns the account and the kids of the keys turned ``inactive``.

        As Barong, an account becoming ``disabled`` has its active keys turned ``inactive`` in the same
        transaction.  None when there is no such account.
        """
        if state is not None and state not in SERVICE_ACCOUNT_STATES:
            raise ValidationFailed("state.invalid")
        values: dict[str, Any] = {"updated_at": utcnow()}
        if state is not None:
            values["state"] = state
        if role is not None:
            values["role"] = role
        kids: list[str] = []
        async with transaction(self._engine) as conn:
            if role is not None:
                await self._check_role(conn, role)
            account_id = await conn.scalar(select(service_accounts.c.id).where(service_accounts.c.uid == uid))
            if account_id is None:
                return None
            await conn.execute(
                update(service_accounts).where(service_accounts.c.id == account_id).values(**values)
            )
            if state == DISABLED:
                held = and_(
                    api_keys.c.key_holder_account_type == SERVICE_ACCOUNT_HOLDER,
                    api_keys.c.key_holder_account_id == account_id,
                    api_keys.c.state == "active",
                )
                kids = list((await conn.execute(select(api_keys.c.kid).where(held))).scalars())
                if kids:
                    await conn.execute(
                        update(api_keys)
                        .where(api_keys.c.kid.in_(kids))
                        .values(state="inactive", updated_at=utcnow())
                    )
        account = await self.get_by_uid(uid)
        assert account is not None
        return account, kids

    async def delete(self, uid: str) -> tuple[ServiceAccount, list[str]] | None:
        """Barong's delete: the account becomes ``disabled`` and its active keys ``inactive``."""
        return await self.update(uid, state=DISABLED)


class OwnedServiceAccounts:
    """A user's service accounts and their API keys (``/resource/service_accounts``).

    The account is looked up among the caller's own first (``404 resource.service_account.doesnt_exist``,
    before any TOTP check, as Barong); the key rules and the owner's TOTP guard are the user API keys'
    (:class:`identity.api_key_service.ApiKeyService`), with the holder type ``ServiceAccount``.
    """

    def __init__(self, accounts: SqlServiceAccountRepository, keys: ApiKeyService) -> None:
        self._accounts = accounts
        self._keys = keys

    async def list(self, owner: User) -> list[ServiceAccount]:
        return await self._accounts.list_for_owner(owner.id)

    async def owned(self, owner: User, uid: str) -> ServiceAccount:
        account = await self._accounts.get_by_uid(uid)
        if account is None or account.owner_id != owner.id:
            raise RecordNotFound(NOT_OWNED)
        return account

    async def list_keys(
        self, owner: User, uid: str, params: dict[str, Any]
    ) -> tuple[list[ApiKey], int, Page]:
        account = await self.owned(owner, uid)
        return await self._keys.list(SERVICE_ACCOUNT_HOLDER, account.id, params, KEYS_PREFIX)

    async def create_key(
        self, owner: User, uid: str, *, algorithm: str, scope: str | None, totp_code: str | None
    ) -> ApiKey:
        account = await self.owned(owner, uid)
        return await self._keys.create(
            owner,
            SERVICE_ACCOUNT_HOLDER,
            account.id,
            account.state,
            algorithm=algorithm,
            scope=scope,
            totp_code=totp_code,
            prefix=KEYS_PREFIX,
        )

    async def update_key(
        self, owner: User, uid: str, kid: str, *, scope: str | None, state: str | None, totp_code: str | None
    ) -> ApiKey:
        account = await self.owned(owner, uid)
        return await self._keys.update(
            owner,
            SERVICE_ACCOUNT_HOLDER,
            account.id,
            account.state,
            kid,
            scope=scope,
            state=state,
            totp_code=totp_code,
            prefix=KEYS_PREFIX,
        )

    async def delete_key(self, owner: User, uid: str, kid: str, *, totp_code: str | None) -> None:
        account = await self.owned(owner, uid)
        await self._keys.delete(
            owner, SERVICE_ACCOUNT_HOLDER, account.id, kid, totp_code=totp_code, prefix=KEYS_PREFIX
        )
