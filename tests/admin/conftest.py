"""Fixtures of the admin API tests: a client of the whole app and signed-in callers of any role."""

from __future__ import annotations

from typing import Any

import pytest

from identity.totp import code_at
from tests.identity.helpers import cheap_argon2
from tests.resource.helpers import Caller, bearer, jwt_for

ADMIN = "/api/v2/barong/admin"
ADMIN_ALIAS = "/api/v2/admin"


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
