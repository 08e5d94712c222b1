"""What the identity service tells users by e-mail, in their language (``data.language``).

The mailer only queues: sending never blocks or fails the request that triggered it.
"""

from __future__ import annotations

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
    """Builds the four account e-mails and hands them to the mail queue."""

    def __init__(
        self, mail: MailQueue, *, frontend_url: str, email_token_hours: int, reset_token_hours: int
    ) -> None:
        self._mail = mail
        self._frontend = frontend_url.rstrip("/")
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
