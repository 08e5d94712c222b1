"""What every admin change of a user shares: who may change whom, and making the change count at once.

- A non-superadmin may not change a superadmin (``admin.user.superadmin_change``), nor anyone change
  himself (``admin.user.update_himself``).  The ``authz`` command acts as a superadmin operator.
- After the write, the decision endpoint of every instance must see the user as it is now:
  ``UserChangeEffects.apply`` announces the user (and, through ``AccountPropagation``, the keys and service
  accounts a state or 2FA change touches) and revokes every session of a user who may no longer log in.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from identity.account_propagation import AccountPropagation
from identity.admin.actor import Actor
from identity.changes import ChangePublisher
from identity.errors import RecordNotFound, ValidationFailed
from identity.models import User
from identity.sessions import RedisSessionStore
from identity.users import SqlUserRepository

SUPERADMIN = "superadmin"
DOESNT_EXIST = "admin.user.doesnt_exist"
SUPERADMIN_CHANGE = "admin.user.superadmin_change"
UPDATE_HIMSELF = "admin.user.update_himself"


def is_superadmin(actor: Actor) -> bool:
    """A superadmin, or the operator at the ``authz`` command."""
    return actor.user is None or actor.user.role == SUPERADMIN


def check_target(
    actor: Actor, target: User, *, superadmin_key: str = SUPERADMIN_CHANGE, himself: bool = True
) -> None:
    """Refuse a change of a superadmin by anybody else (422 ``superadmin_key``) and, unless ``himself`` is
    False, of the actor's own account (422 ``admin.user.update_himself``)."""
    if target.role == SUPERADMIN and not is_superadmin(actor):
        raise ValidationFailed(superadmin_key)
    if himself and actor.user is not None and actor.user.uid == target.uid:
        raise ValidationFailed(UPDATE_HIMSELF)


async def locked_target(conn: AsyncConnection, uid: str) -> User:
    """User ``uid`` with its row locked for ``conn``'s transaction; 404 ``admin.user.doesnt_exist``."""
    if await SqlUserRepository.lock_in(conn, uid) is None:
        raise RecordNotFound(DOESNT_EXIST)
    user = await SqlUserRepository.get_in(conn, uid)
    if user is None:
        raise RecordNotFound(DOESNT_EXIST)
    return user


class UserChangeEffects:
    """Makes a committed change of a user count at every instance's decision endpoint at once."""

    def __init__(
        self, propagation: AccountPropagation, changes: ChangePublisher, sessions: RedisSessionStore
    ) -> None:
        self._propagation = propagation
        self._changes = changes
        self._sessions = sessions

    async def apply(self, before: User, after: User) -> None:
        """A state or 2FA change goes to the user's keys and service accounts (``AccountPropagation``, which
        announces them all); any other change announces the user.  A user who may no longer log in loses
        every session (the store announces each revoked one)."""
        if (before.state, before.otp) != (after.state, after.otp):
            await self._propagation.user_changed(before, after)
        else:
            await self._changes.user_changed(after.uid)
        if not after.usable:
            await self._sessions.destroy_all(after.uid)
