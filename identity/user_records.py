"""Everything a user's full entity shows besides the user row, read on one connection.

``UserWithFullInfo`` lists the user's labels, phones, profiles and data storages and its referrer's uid:
five reads, which on separate pooled connections cost a connection checkout and a rollback each (about
half the time of ``GET /users/me`` on SQLite, measured).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from identity.data_storage import SqlDataStorageRepository
from identity.db import users
from identity.labels import SqlLabelRepository
from identity.models import DataStorage, Label, Phone, Profile, User
from identity.phones import SqlPhoneRepository
from identity.profiles import SqlProfileRepository
from identity.storage import reading


@dataclass(frozen=True, slots=True)
class UserRecords:
    referral_uid: str | None
    labels: list[Label]
    phones: list[Phone]
    profiles: list[Profile]
    data_storages: list[DataStorage]


class UserRecordsReader:
    """Reads a user's records in one go."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def read(self, user: User) -> UserRecords:
        async with reading(self._engine) as conn:
            referral_uid = None
            if user.referral_id is not None:
                referral_uid = await conn.scalar(select(users.c.uid).where(users.c.id == user.referral_id))
            return UserRecords(
                referral_uid=referral_uid,
                labels=await SqlLabelRepository.for_user_in(conn, user.id),
                phones=await SqlPhoneRepository.for_user_in(conn, user.id),
                profiles=await SqlProfileRepository.for_user_in(conn, user.id),
                data_storages=await SqlDataStorageRepository.for_user_in(conn, user.id),
            )
