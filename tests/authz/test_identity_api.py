"""The identity API's wiring (``authz/identity_api.py``): what ``/configs`` reports from the settings,
and mail on the embedded default (no SMTP: ``.eml`` files in ``<data dir>/outbox/``)."""

from __future__ import annotations

import asyncio
import email
import email.policy
from dataclasses import replace
from typing import Any

import pytest

from authz.app import build_app
from authz.identity_api import package_version
from tests.identity.helpers import browser, cheap_argon2

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
async def test_configs_report_the_settings(aiohttp_client: Any, settings: Any, services: Any) -> None:
    changed = replace(
        settings,
        captcha="recaptcha",
        recaptcha_site_key="site-key-123",
        recaptcha_secret_key="never-shown",
        session_expire_time=900,
        password_min_entropy=25.0,
        auth0_domain="tenant.example.com",
        auth0_client_id="client-1",
    )
    client = await aiohttp_client(build_app(changed, changed.redis_url))
    for path in ("/api/v2/barong/identity/configs", "/api/v2/public/configs"):
        body = await (await client.get(path)).json()
        assert body["captcha_type"] == "recaptcha" and body["captcha_id"] == "site-key-123"
        assert (body["session_expire_time"], body["password_min_entropy"]) == (900, 25.0)
        assert "never-shown" not in str(body)
    auth0 = await (await client.get("/api/v2/barong/public/configs/auth0")).json()
    assert auth0 == {"auth0_domain": "tenant.example.com", "auth0_client_id": "client-1"}
    version = await (await client.get("/api/v2/barong/public/version")).json()
    assert version["version"] == package_version() != "0.0.0"


@SQLITE_ONLY
async def test_without_smtp_mail_lands_in_the_outbox(
    aiohttp_client: Any, settings: Any, services: Any, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cheap_argon2(monkeypatch)
    assert settings.smtp_url == ""
    await make_user(email="first@example.com")
    client = await aiohttp_client(build_app(settings, settings.redis_url))
    response = await client.post(
        "/api/v2/barong/identity/users",
        json={"email": "outbox@example.com", "password": "Correct-Horse-Battery-9"},
        headers=browser(),
    )
    assert response.status == 201
    outbox = settings.data_dir / "outbox"
    for _ in range(100):
        files = sorted(outbox.glob("*.eml")) if outbox.exists() else []
        if files:
            break
        await asyncio.sleep(0.05)
    [path] = files
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["To"] == "outbox@example.com"
    assert "confirmation_token=" in message.get_body(preferencelist=("plain",)).get_content()
    assert outbox.stat().st_mode & 0o777 == 0o700
