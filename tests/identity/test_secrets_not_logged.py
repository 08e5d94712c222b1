"""Secrets never reach the logs: passwords, session ids, API-key secrets, refresh and confirmation tokens
stay out of every log record (message, arguments, extra fields) of the flows that handle them."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from authz.app import build_app
from identity.totp import code_at
from tests.authz.helpers import signing_key_pem
from tests.identity.conftest import Inbox, token_in
from tests.identity.financelime.helpers import DEVICE
from tests.identity.financelime.helpers import headers as token_headers
from tests.identity.helpers import LOGIN, browser, cheap_argon2, with_cookie
from tests.resource.helpers import bearer

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

USERS = "/api/v2/barong/identity/users"


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_argon2(monkeypatch)


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler could write of ``record``: the message, its arguments, extras, the traceback."""
    return f"{record.getMessage()}\n{record.args!r}\n{record.__dict__!r}\n{record.exc_text or ''}"


async def test_no_secret_is_logged(
    aiohttp_client: Any,
    mail_settings: Any,
    services: Any,
    clock: Any,
    inbox: Inbox,
    make_user: Any,
    caplog: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = replace(mail_settings, jwt_private_key=signing_key_pem())
    api = await aiohttp_client(
        build_app(settings, settings.redis_url, clock=clock), cookie_jar=aiohttp.DummyCookieJar()
    )
    await make_user()  # the first account: the sign-up below is an ordinary one
    secrets: dict[str, str] = {}

    # Sign-up, then confirmation: each opens a session.
    secrets["sign-up password"] = "Sign-up-Passw0rd-7q!"
    signed_up = await api.post(
        USERS, json={"email": "new@example.com", "password": secrets["sign-up password"]}, headers=browser()
    )
    assert signed_up.status == 201, await signed_up.text()
    secrets["sign-up session"] = signed_up.cookies["_barong_session"].value
    [mail] = await inbox.wait_for("new@example.com", "email_confirmation")
    secrets["confirmation token"] = token_in(mail, "confirmation_token")
    confirmed = await api.post(
        f"{USERS}/email/confirm_code", json={"token": secrets["confirmation token"]}, headers=browser()
    )
    assert confirmed.status == 201, await confirmed.text()
    secrets["confirmation session"] = confirmed.cookies["_barong_session"].value

    # A failed and a successful login (with 2FA), then an API key.
    account = await make_user(password="Login-Passw0rd-3k#", otp=True)
    secrets["login password"] = account.password
    secrets["wrong password"] = "Wrong-Passw0rd-9z%"
    failed = await api.post(
        LOGIN, json={"email": account.user.email, "password": secrets["wrong password"]}, headers=browser()
    )
    assert failed.status == 401
    login = {
        "email": account.user.email,
        "password": account.password,
        "otp_code": code_at(account.otp_secret, clock.now),
    }
    logged_in = await api.post(LOGIN, json=login, headers=browser())
    assert logged_in.status == 200, await logged_in.text()
    secrets["login session"] = logged_in.cookies["_barong_session"].value
    decided = await api.get(
        "/api/v2/auth/api/v2/barong/resource/api_keys",
        headers=with_cookie(
            secrets["login session"], **{"X-CSRF-Token": (await logged_in.json())["csrf_token"]}
        ),
    )
    assert decided.status == 200, await decided.text()
    clock.advance(30)
    created = await api.post(
        "/api/v2/barong/resource/api_keys",
        json={"algorithm": "HS256", "totp_code": code_at(account.otp_secret, clock.now)},
        headers=bearer(decided.headers["Authorization"]),
    )
    assert created.status == 201, await created.text()
    secrets["API-key secret"] = (await created.json())["secret"]

    # The token API: login and refresh.
    holder = await make_user(password="Token-Passw0rd-5m&")
    secrets["token API password"] = holder.password
    oauth = {"clientID": "PWA", "device": DEVICE, "email": holder.user.email, "password": holder.password}
    tokens = await (await api.post("/v1/oauth", json=oauth, headers=token_headers())).json()
    secrets["refresh token"] = tokens["refreshToken"]
    refreshed = await api.put(
        "/v1/oauth", json={"refreshToken": tokens["refreshToken"]}, headers=token_headers()
    )
    assert refreshed.status == 200, await refreshed.text()
    secrets["renewed refresh token"] = (await refreshed.json())["refreshToken"]

    assert caplog.records, "nothing was logged: the check would prove nothing"
    for record in caplog.records:
        text = record_text(record)
        leaked = [name for name, secret in secrets.items() if secret in text]
        assert not leaked, (leaked, record.name, text[:500])
