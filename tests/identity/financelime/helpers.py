"""Helpers of the token API tests: request ids, mailed links and passwords, and the API's two path sets."""

from __future__ import annotations

import re
import secrets
from email.message import EmailMessage
from typing import Any

from tests.identity.conftest import text_of

UA = "FinancelimeApp/1.0 (Android 14)"
CLIENT_IP = "81.2.69.10"
DEVICE = {"platform": "Linux x86_64", "height": 1920, "width": 1060, "language": "en-US", "timezone": "2"}

#: The operations under seed 000's paths and seed 001's aliases.
SEED_000 = {
    "sign_up": ("POST", "/v1/user"),
    "reset": ("PUT", "/v1/user"),
    "login": ("POST", "/v1/oauth"),
    "refresh": ("PUT", "/v1/oauth"),
    "sessions": ("GET", "/v1/sessions"),
    "revoke": ("DELETE", "/v1/session"),
    "version": ("GET", "/v1/version"),
}
SEED_001 = {
    "sign_up": ("POST", "/v1/user/signup"),
    "reset": ("POST", "/v1/user/password"),
    "login": ("POST", "/v1/oauth/create"),
    "refresh": ("PUT", "/v1/oauth/refresh"),
    "sessions": ("GET", "/v1/session/list"),
    "revoke": ("DELETE", "/v1/session/remove"),
    "version": ("GET", "/v1/version"),
}
PATH_SETS = {"seed000": SEED_000, "seed001": SEED_001}


def rid() -> str:
    """A request id in seed 000's long form (the service accepts any short visible-ASCII id)."""
    return secrets.token_hex(32)


def headers(token: str | None = None, **extra: str) -> dict[str, str]:
    out = {"request-id": rid(), "User-Agent": UA, "X-Forwarded-For": CLIENT_IP, **extra}
    if token is not None:
        out["Authorization"] = f"Bearer {token}"
    return out


class Api:
    """Calls the token API through one of its path sets (``slash``: with a trailing slash)."""

    def __init__(self, client: Any, paths: dict[str, tuple[str, str]], *, slash: bool = False) -> None:
        self.client = client
        self.paths = paths
        self.slash = slash

    async def call(self, operation: str, body: Any = None, *, token: str | None = None, **extra: str) -> Any:
        method, path = self.paths[operation]
        kwargs: dict[str, Any] = {"headers": headers(token, **extra)}
        if body is not None:
            kwargs["json"] = body
        return await self.client.request(method, path + ("/" if self.slash else ""), **kwargs)

    async def login(self, email: str, password: str, **extra: Any) -> dict[str, str]:
        body = {"clientID": "PWA_v0.0.1", "device": DEVICE, "email": email, "password": password, **extra}
        response = await self.call("login", body)
        assert response.status == 200, await response.text()
        return await response.json()  # type: ignore[no-any-return]


def link_in(message: EmailMessage, page: str) -> str:
    """The path and query of the ``/u/`` or ``/p/`` link in a mail."""
    found = re.search(rf"https?://[^/\s]+(/{page}/[A-Za-z0-9]+\?rid=[A-Za-z0-9]+)", text_of(message))
    assert found, text_of(message)
    return found.group(1)


def password_in(message: EmailMessage) -> str:
    found = re.search(r"^    (\S{16})\r?$", text_of(message), re.MULTILINE)
    assert found, text_of(message)
    return found.group(1)


async def error_of(response: Any) -> tuple[int, str]:
    body = await response.json()
    assert body == {"code": response.status, "message": body["message"]}, body
    return response.status, body["message"]
