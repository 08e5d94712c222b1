"""Getting a bearer JWT the way a proxy does: log in, ask the decision endpoint, forward its header."""

from __future__ import annotations

from typing import Any

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
