"""Getting a bearer JWT the way a proxy does: log in, ask the decision endpoint, forward its header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from identity.totp import code_at
from tests.identity.helpers import browser, login, with_cookie

ME = "/api/v2/barong/resource/users/me"
RESOURCE = "/api/v2/barong/resource"
RESOURCE_ALIAS = "/api/v2/resource"


async def jwt_for(client: Any, account: Any, *, path: str = "api/v2/barong/resource/users/me", **login_extra: Any) -> str:
    """The upstream JWT the decision endpoint mints for ``account`` (logged in with a cookie) on ``path``.

    Accounts with 2FA need ``otp_code=...`` in ``login_extra``.
    """
    cookie, _ = await login(client, account, **login_extra)
    response = await client.get(f"/api/v2/auth/{path}", headers=with_cookie(cookie))
    assert response.status == 200, await response.text()
    header = response.headers["Authorization"]
    assert header.startswith("Bearer ")
    return header


def bearer(token: str, **extra: str) -> dict[str, str]:
    """Headers of a request the gateway forwards: the browser's, plus the JWT."""
    return browser(Authorization=token, **extra)


async def errors_of(response: Any, status: int) -> list[str]:
    """The error keys of a response that must have ``status``."""
    assert response.status == status, await response.text()
    return (await response.json())["errors"]  # type: ignore[no-any-return]


@dataclass
class Caller:
    """A signed-in user: its account, the bearer headers, and fresh TOTP codes on the test clock."""

    account: Any
    headers: dict[str, str]
    clock: Any

    @property
    def user(self) -> Any:
        return self.account.user

    def code(self) -> str:
        """A right code for a step not used yet (each code counts once)."""
        self.clock.advance(30)
        return code_at(self.account.otp_secret, self.clock.now)
