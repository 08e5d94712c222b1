"""Helpers for the identity API tests: logging in over HTTP and asking the decision endpoint about a cookie."""

from __future__ import annotations

from typing import Any

from tests.authz.helpers import signing_key_pem as jwt_key_pem  # noqa: F401 - re-exported: one RSA key per run

UA = "Mozilla/5.0 (X11; Linux x86_64) Test"
CLIENT_IP = "81.2.69.10"  # in the test GeoIP database: United Kingdom
LOGIN = "/api/v2/barong/identity/sessions"
LOGIN_ALIAS = "/api/v2/identity/sessions"
PROTECTED = "/api/v2/auth/api/v2/peatio/account/balances"  # members may GET it (policies/permissions.yml)


def browser(ip: str = CLIENT_IP, **extra: str) -> dict[str, str]:
    """Headers of a browser behind the (trusted, loopback) gateway."""
    return {"User-Agent": UA, "X-Forwarded-For": ip, **extra}


def with_cookie(cookie: str, ip: str = CLIENT_IP, **extra: str) -> dict[str, str]:
    return browser(ip, Cookie=f"_barong_session={cookie}", **extra)


async def post_login(
    client: Any, body: Any, *, headers: dict[str, str] | None = None, path: str = LOGIN
) -> Any:
    return await client.post(path, json=body, headers=headers or browser())


async def login(
    client: Any, account: Any, *, headers: dict[str, str] | None = None, **extra: Any
) -> tuple[str, Any]:
    """Log ``account`` in; returns the session cookie's value and the response body."""
    body = {"email": account.user.email, "password": account.password, **extra}
    response = await post_login(client, body, headers=headers)
    assert response.status == 200, await response.text()
    return response.cookies["_barong_session"].value, await response.json()


async def decision_status(client: Any, cookie: str) -> tuple[int, Any]:
    """What the decision endpoint says about a GET to a members' path with ``cookie``."""
    response = await client.get(PROTECTED, headers=with_cookie(cookie))
    body = await response.json() if response.status != 200 else None
    return response.status, body


def wrong_totp(secret: str, now: float) -> str:
    """A well-formed 6-digit code valid for none of the steps around ``now``."""
    from identity.totp import STEP, code_at

    valid = {code_at(secret, now + k * STEP) for k in (-1, 0, 1)}
    return next(code for code in (f"{n:06d}" for n in range(1_000_000)) if code not in valid)


def cheap_argon2(monkeypatch: Any) -> None:
    """Hash with argon2id at its lowest cost: at the production cost (~0.2 s a hash) hashing would take
    most of the run time of the login tests.  The algorithm and the code paths stay the same."""
    from argon2 import PasswordHasher

    from identity import passwords

    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(passwords, "_hasher", hasher)
    monkeypatch.setattr(passwords, "_DUMMY_HASH", hasher.hash("dummy-password-for-timing"))
