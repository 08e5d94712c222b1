"""The session cookie's flags: ``HttpOnly``, ``SameSite=Lax`` and ``Secure`` unless turned off by setting."""

from __future__ import annotations

from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest

from authz.settings import load_settings
from tests.identity.helpers import LOGIN, browser, cheap_argon2

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_argon2(monkeypatch)


def session_cookie(response: Any) -> Any:
    """The ``_barong_session`` morsel of the response's only ``Set-Cookie`` header, and that header."""
    (header,) = response.headers.getall("Set-Cookie")
    parsed: SimpleCookie = SimpleCookie()
    parsed.load(header)
    return parsed["_barong_session"], header


def test_the_cookie_is_secure_unless_the_setting_says_otherwise(tmp_path: Path) -> None:
    assert load_settings(env={}, data_dir=tmp_path).session_cookie_secure is True
    off = load_settings(env={"AUTHZ_SESSION_COOKIE_SECURE": "false"}, data_dir=tmp_path)
    assert off.session_cookie_secure is False


@SQLITE
@pytest.mark.parametrize("secure", [True, False])
async def test_login_and_sign_up_set_an_http_only_lax_cookie(
    make_client: Any, make_user: Any, secure: bool
) -> None:
    api = await make_client(session_cookie_secure=secure)
    sign_up = {"email": "first@example.com", "password": "Tr0ub4dor&3-horse-battery"}
    responses = [await api.post("/api/v2/barong/identity/users", json=sign_up, headers=browser())]
    account = await make_user()
    login = {"email": account.user.email, "password": account.password}
    responses.append(await api.post(LOGIN, json=login, headers=browser()))
    for response in responses:
        assert response.status in (200, 201), await response.text()
        morsel, header = session_cookie(response)
        assert morsel.value and morsel["path"] == "/"
        assert morsel["httponly"] is True, header
        assert morsel["samesite"] == "Lax", header
        assert bool(morsel["secure"]) is secure, header


@SQLITE
@pytest.mark.parametrize("secure", [True, False])
async def test_logout_expires_the_cookie_with_the_same_flags(
    make_client: Any, make_user: Any, secure: bool
) -> None:
    api = await make_client(session_cookie_secure=secure)
    account = await make_user()
    login = {"email": account.user.email, "password": account.password}
    cookie, _ = session_cookie(await api.post(LOGIN, json=login, headers=browser()))
    response = await api.delete(LOGIN, headers=browser(Cookie=f"_barong_session={cookie.value}"))
    assert response.status == 200, await response.text()
    morsel, header = session_cookie(response)
    assert morsel.value == "" and morsel["max-age"] == "0", header
    assert morsel["httponly"] is True and morsel["samesite"] == "Lax" and bool(morsel["secure"]) is secure, (
        header
    )
