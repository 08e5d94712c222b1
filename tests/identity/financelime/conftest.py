"""Fixtures of the token API tests: the whole app mailing to a local SMTP server, and invite codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from authz.app import build_app
from authz.settings import Settings
from identity.invite_codes import SqlInviteCodeRepository
from tests.identity.helpers import cheap_argon2


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: Any) -> None:
    cheap_argon2(monkeypatch)


@pytest.fixture
def token_settings(mail_settings: Settings) -> Settings:
    return replace(mail_settings, api_url="https://api.example.test")


@pytest.fixture
async def api_client(aiohttp_client: Any, token_settings: Settings, services: Any, clock: Any) -> Any:
    """The whole app (no cookie jar: each request says what it carries), mailing to ``inbox``."""
    app = build_app(token_settings, token_settings.redis_url, clock=clock)
    return await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar())


@pytest.fixture
async def invite(services: Any) -> AsyncIterator[str]:
    """A fresh invite code good for 5 sign-ups."""
    code = await SqlInviteCodeRepository(services.engine).create(max_uses=5, created_by="test")
    yield code.code
