"""Fixtures of the admin API tests: a client of the whole app, signed-in callers of any role, and a
permission table that leaves the admin API's own checks (abilities, rules) to decide alone."""

from __future__ import annotations

from typing import Any

import pytest

from authz.http.state import STATE
from identity.models import Permission
from identity.totp import code_at
from tests.identity.helpers import cheap_argon2
from tests.resource.helpers import Caller, bearer, jwt_for

ADMIN = "/api/v2/barong/admin"
ADMIN_ALIAS = "/api/v2/admin"
#: A role that no file or permission knows.
GHOST = "ghost"


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_argon2(monkeypatch)


@pytest.fixture
def sign_in(api: Any, make_user: Any, clock: Any) -> Any:
    """``await sign_in(role="admin", **make_user_args)``: a :class:`Caller` holding a bearer JWT minted by the
    decision endpoint (2FA off unless ``otp=True``)."""

    async def make(role: str = "superadmin", **user: Any) -> Caller:
        account = await make_user(role=role, **user)
        extra = {"otp_code": code_at(account.otp_secret, clock.now)} if account.otp_secret else {}
        return Caller(account, bearer(await jwt_for(api, account, **extra)), clock)

    return make


@pytest.fixture
async def superadmin(sign_in: Any) -> Caller:
    return await sign_in("superadmin")


@pytest.fixture
def open_table(services: Any) -> Any:
    """``await open_table(client)``: the permission table becomes one ``ALL api/v2 ACCEPT`` row per role (the
    shipped roles and :data:`GHOST`), reloaded by ``client``'s app at once.

    The admin API checks the table before the abilities (as the gateway would have); under the shipped table
    many a role never reaches them.  With this one the abilities and the admin rules alone decide.
    """

    async def open_(client: Any) -> None:
        roles = {p.role for p in await services.permissions.list_all()} | {GHOST}
        rows = [Permission(role, "ALL", "api/v2", "ACCEPT") for role in sorted(roles)]
        await services.permissions.add_many(rows, replace=True)
        await client.app[STATE].policy.reload()

    return open_
