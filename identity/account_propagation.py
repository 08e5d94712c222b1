"""Side effects of a user's state or 2FA change on its API keys and service accounts (barong-behavior.md
§4.7, §5.3).

- The state leaving ``active``, or 2FA turning off, makes every active API key of the user and of its service
  accounts ``inactive``.
- A state other than ``active`` is copied onto each service account the user owns.

The changes are written in one transaction and announced on the change channel, so that every instance's
decision endpoint drops the cached keys and accounts at once.
"""

from __future__ import annotations

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from identity.changes import ChangePublisher
from identity.db import api_keys, service_accounts, utcnow
from identity.models import SERVICE_ACCOUNT_HOLDER, USER_HOLDER, User
from identity.storage import transaction


class AccountPropagation:
    """Applies a user's change to what it owns; call after every change of a user's state or 2FA."""

    def __init__(self, engine: AsyncEngine, changes: ChangePublisher) -> None:
        self._engine = engine
        self._changes = changes

    async def user_changed(self, before: User, after: User) -> None:
        left_active = before.state == "active" and after.state != "active"
        otp_off = before.otp and not after.otp
        copy_state = after.state != "active" and after.state != before.state
        kids: list[str] = []
        account_uids: list[str] = []
        if left_active or otp_off or copy_state:
            async with transaction(self._engine) as conn:
                owned = (
                    await conn.execute(
                        select(service_accounts.c.id, service_accounts.c.uid).where(
                            service_accounts.c.owner_id == after.id
                        )
                    )
                ).all()
                account_ids = [row.id for row in owned]
                if left_active or otp_off:
                    held = or_(
                        and_(
                            api_keys.c.key_holder_account_type == USER_HOLDER,
                            api_keys.c.key_holder_account_id == after.id,
                        ),
                        and_(
                            api_keys.c.key_holder_account_type == SERVICE_ACCOUNT_HOLDER,
                            api_keys.c.key_holder_account_id.in_(account_ids),
                        ),
                    )
                    active = and_(held, api_keys.c.state == "active")
                    kids = list((await conn.execute(select(api_keys.c.kid).where(active))).scalars())
                    if kids:
                        await conn.execute(
                            update(api_keys)
                            .where(api_keys.c.kid.in_(kids))
                            .values(state="inactive", updated_at=utcnow())
                        )
                if copy_state and account_ids:
                    await conn.execute(
                        update(service_accounts)
                        .where(service_accounts.c.owner_id == after.id)
                        .values(state=after.state, updated_at=utcnow())
                    )
                    account_uids = [row.uid for row in owned]
        messages = [f"user:{after.uid}", *(f"apikey:{kid}" for kid in kids), *(f"user:{uid}" for uid in account_uids)]
        await self._changes.publish(*messages)
