"""Responses shared by the identity handlers: a user entity, and a freshly opened session's cookie."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from identity.data_storage import SqlDataStorageRepository
from identity.http.context import IDENTITY
from identity.http.entities import user_with_full_info
from identity.login import LoginResult
from identity.models import User
from identity.profiles import SqlProfileRepository
from identity.user_records import UserRecordsReader


@dataclass(frozen=True)
class AccountRecords:
    """The user's records that its entity shows, and whether personal data is masked (``API_DATA_MASKING``);
    the profile and data storage endpoints use them too."""

    profiles: SqlProfileRepository
    data_storages: SqlDataStorageRepository
    reader: UserRecordsReader
    masking: bool = True


ACCOUNT_RECORDS = web.AppKey("account_records", AccountRecords)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


async def full_user(
    request: web.Request,
    user: User,
    csrf_token: str | None = None,
) -> dict[str, Any]:
    """``UserWithFullInfo`` of ``user``: its labels, phones, profiles, data storages and its referrer's uid."""
    records = request.app[ACCOUNT_RECORDS]
    found = await records.reader.read(user)
    return user_with_full_info(
        user,
        referral_uid=found.referral_uid,
        csrf_token=csrf_token,
        labels=found.labels,
        profiles=found.profiles,
        data_storages=found.data_storages,
        phones=found.phones,
        masked=records.masking,
    )


async def session_opened(request: web.Request, result: LoginResult, status: int) -> web.Response:
    """The user entity with the session's CSRF token, and the session cookie."""
    ctx = request.app[IDENTITY]
    response = json_response(await full_user(request, result.user, result.session.csrf_token), status)
    response.set_cookie(
        ctx.cookie_name,
        result.session_id,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=ctx.cookie_secure,
        max_age=ctx.cookie_max_age,
    )
    return response
