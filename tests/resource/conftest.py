"""Fixtures of the resource API tests: cheap password hashing, signed-in members (the cookie-less `api` client
is tests/conftest.py's)."""

from __future__ import annotations

from typing import Any

import pytest

from identity.totp import code_at
from tests.identity.helpers import cheap_argon2
from tests.resource.helpers import Caller, bearer, jwt_for


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_argon2(monkeypatch)


@pytest.fixture
async def member(api: Any, make_user: Any) -> tuple[Any, dict[str, str]]:
    """An active member without 2FA and the headers of its requests."""
    account = await make_user()
    return account, bearer(await jwt_for(api, account))


@pytest.fixture
def sign_in(api: Any, make_user: Any, clock: Any) -> Any:
    """``await sign_in(**make_user_args)``: a :class:`Caller` (2FA on unless ``otp=False``)."""

    async def make(**user: Any) -> Caller:
        user.setdefault("otp", True)
        account = await make_user(**user)
        extra = {"otp_code": code_at(account.otp_secret, clock.now)} if account.otp_secret else {}
        return Caller(account, bearer(await jwt_for(api, account, **extra)), clock)

    return make
