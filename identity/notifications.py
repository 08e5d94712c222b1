"""What the identity service tells users by e-mail, in their language (``data.language``).

The mailer only queues: sending never blocks or fails the request that triggered it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlencode

import orjson

from identity.activity_log import ClientInfo
from identity.models import User


class MailQueue(Protocol):
    async def send(
        self, template: str, to: str, language: str | None, context: Mapping[str, Any]
    ) -> None: ...


def user_language(user: User) -> str | None:
    """``data.language`` of the user's JSON data, if it holds one."""
    if not user.data:
        return None
    try:
        data = orjson.loads(user.data)
    except orjson.JSONDecodeError:
        return None
    language = data.get("language") if isinstance(data, dict) else None
    return language.strip().lower()[:2] if isinstance(language, str) and language.strip() else None


class Notifier:
    """Builds the account e-mails and hands them to the mail queue."""

    def __init__(
        self,
        mail: MailQueue,
        *,
        frontend_url: str,
        email_token_hours: int,
        reset_token_hours: int,
        api_url: str = "",
    ) -> None:
        self._mail = mail
        self._frontend = frontend_url.rstrip("/")
        self._api = (api_url or frontend_url).rstrip("/")
        self._email_hours = email_token_hours
        self._reset_hours = reset_token_hours

    async def _send(self, template: str, user: User, **context: Any) -> None:
        await self._mail.send(template, user.email, user_language(user), context)

    async def email_confirmation(self, user: User, token: str) -> None:
        link = f"{self._frontend}/accounts/confirmation?{urlencode({'confirmation_token': token})}"
        await self._send("email_confirmation", user, link=link, expires_hours=self._email_hours)

    async def password_reset(self, user: User, token: str) -> None:
        link = f"{self._frontend}/accounts/password_reset?{urlencode({'reset_token': token})}"
        await self._send("password_reset", user, link=link, expires_hours=self._reset_hours)

    async def password_changed(self, user: User) -> None:
        await self._send("password_changed", user)

    async def new_login(self, user: User, client: ClientInfo, when: float) -> None:
        moment = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        await self._send(
            "new_login", user, ip=client.ip, user_agent=client.user_agent, country=client.country, time=moment
        )

    # --- the token API (Financelime): links to this service's pages, and generated passwords ----------------

    def _page_link(self, page: str, key: str) -> str:
        # ``rid`` is the request id the page asks for (the link is opened by a browser, which sends no header).
        return f"{self._api}/{page}/{key}?{urlencode({'rid': secrets.token_hex(8)})}"

    async def signup_link(self, email: str, language: str, key: str, ttl: int) -> None:
        link = self._page_link("u", key)
        await self._mail.send("signup_confirmation", email, language, {"link": link, "expires_hours": _hours(ttl)})

    async def account_password(self, user: User, password: str) -> None:
        await self._send("account_password", user, password=password)

    async def reset_link(self, user: User, key: str, client: ClientInfo, ttl: int) -> None:
        link = self._page_link("p", key)
        await self._send("reset_link", user, link=link, ip=client.ip, expires_minutes=max(1, ttl // 60))

    async def new_password(self, user: User, password: str) -> None:
        await self._send("new_password", user, password=password)


def _hours(seconds: int) -> int:
    return max(1, seconds // 3600)
