"""Who makes an admin change (an admin through the API, or an operator at the CLI) and the admin activity
that records it (barong-behavior.md §9, category ``admin``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from identity.activity_log import ClientInfo, activity_data
from identity.db import utcnow
from identity.models import Activity, User

CLI_USER_AGENT = "authz-cli"


@dataclass(frozen=True, slots=True)
class Actor:
    """The author of an admin change: ``user`` is None for the CLI."""

    user: User | None
    client: ClientInfo

    @classmethod
    def cli(cls) -> Actor:
        """An operator at the ``authz`` command on this machine."""
        return cls(None, ClientInfo(ip="127.0.0.1", user_agent=CLI_USER_AGENT))

    @property
    def role(self) -> str | None:
        return self.user.role if self.user else None

    def activity(
        self,
        topic: str,
        action: str,
        *,
        target_uid: str | None = None,
        data: dict[str, Any] | None = None,
        result: str = "succeed",
    ) -> Activity:
        """An admin activity of this actor: ``action`` is create, update or delete; ``data`` what changed."""
        if self.user is None:
            text = orjson.dumps({**(data or {}), "via": "cli"}).decode()
        else:
            text = activity_data(self.client.user_agent, data)
        return Activity(
            category="admin",
            topic=topic,
            action=action,
            result=result,
            user_id=self.user.id if self.user else None,
            target_uid=target_uid,
            user_ip=self.client.ip,
            user_ip_country=self.client.country,
            user_agent=self.client.user_agent,
            data=text,
            created_at=utcnow(),
        )
