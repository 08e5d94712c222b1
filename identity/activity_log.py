"""Writing user activities (barong-behavior.md §9): who did what, from where, with which result."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from identity.activities import SqlActivityRepository
from identity.models import Activity, User

#: Tokens that every mainstream browser's User-Agent carries one of; anything else is noted as suspicious.
_BROWSER = re.compile(r"Mozilla/|Opera/|Chrome/|Safari/|Firefox/|Edg/|OPR/", re.IGNORECASE)
SUSPICIOUS_NOTE = "Detected suspicious browser"


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Where a request comes from, as the audit trail records it."""

    ip: str
    user_agent: str
    country: str | None = None


def header_text(value: str) -> str:
    """A request header's value as text that SQL and Redis can store: bytes beyond ASCII that are not UTF-8
    (aiohttp decodes them as surrogate escapes, which no encoder takes) become U+FFFD."""
    if value.isascii():
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def activity_data(user_agent: str, data: dict[str, Any] | None) -> str | None:
    """The ``data`` text of an activity, with Barong's note for clients that are not browsers."""
    if user_agent and not _BROWSER.search(user_agent):
        data = {**(data or {}), "note": SUSPICIOUS_NOTE}
    return orjson.dumps(data).decode() if data else None


class UserActivityLog:
    """Records user-category activities; a failure carries ``{"reason": ...}`` in its data."""

    def __init__(self, activities: SqlActivityRepository) -> None:
        self._activities = activities

    async def record(
        self,
        user: User,
        client: ClientInfo,
        topic: str,
        action: str,
        result: str = "succeed",
        reason: str | None = None,
    ) -> None:
        await self._activities.add(self.entry(client, topic, action, result, reason, user_id=user.id))

    @staticmethod
    def entry(
        client: ClientInfo,
        topic: str,
        action: str,
        result: str = "succeed",
        reason: str | None = None,
        *,
        user_id: int | None = None,
    ) -> Activity:
        """The activity :meth:`record` writes, for a caller that writes it in its own transaction."""
        return Activity(
            category="user",
            topic=topic,
            action=action,
            result=result,
            user_id=user_id,
            user_ip=client.ip,
            user_agent=client.user_agent,
            user_ip_country=client.country,
            data=activity_data(client.user_agent, {"reason": reason} if reason else None),
        )
