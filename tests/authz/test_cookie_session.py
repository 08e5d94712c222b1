"""The cookie-session branch of the decision endpoint (barong-behavior.md §2.4), over the real app.

CSRF on every verb but GET, HEAD and OPTIONS (checked before the session exists), UA and /16 or /96 IP
pinning, sliding idle expiry on an injected clock, and revocation: a logout, a revoked session or a user
whose state changed is refused by the very next decision, although the user had been cached by the one
before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import delete

from authz.app import SERVICES
from authz.settings import Settings
from identity.db import users
from identity.sessions import session_hash
from tests.authz.helpers import (
    PRIVATE_PATH,
    UA,
    UK_IP,
    announcer,
    cookie_headers,
    decide,
    error,
    fast_settings,
    login,
    new_user,
    open_session,
    start_client,
)

STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE", "TRACE")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The conftest settings with a signing key shared by every app of the run (key generation is slow)."""
    return fast_settings(settings)


@pytest.fixture
async def session(services: Any, clock: Any) -> tuple[Any, str, str]:
    """An active member with a live session opened from ``UK_IP`` with ``UA``: (user, cookie, csrf)."""
    user = await new_user(services)
    cookie, csrf = await open_session(services, user, clock)
    return user, cookie, csrf


async def test_live_session_is_allowed_with_a_bearer_token(client: Any, session: Any) -> None:
    _, cookie, _ = session
    status, body, headers = await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie))
    assert (status, body) == (200, None)
    assert headers["Authorization"].startswith("Bearer ")


# --- CSRF ---------------------------------------------------------------------------------------------

#: (case, X-CSRF-Token sent as a function of the session's token or None for absent, error key or None).
CSRF_CASES: list[tuple[str, Callable[[str], str] | None, str | None]] = [
    ("absent", None, "authz.missing_csrf_token"),
    ("empty", lambda token: "", "authz.missing_csrf_token"),
    ("another token", lambda token: "0" * 20, "authz.csrf_token_mismatch"),
    ("upper-cased", str.upper, "authz.csrf_token_mismatch"),
    ("a prefix", lambda token: token[:-1], "authz.csrf_token_mismatch"),
    ("the session's", lambda token: token, None),
]


async def test_state_changing_verbs_need_the_sessions_csrf_token(client: Any, session: Any) -> None:
    _, cookie, csrf = session
    for method in STATE_CHANGING:
        for case, sent, key in CSRF_CASES:
            headers = cookie_headers(cookie)
            if sent is not None:
                headers["X-CSRF-Token"] = sent(csrf)
            expected = (401, error(key)) if key else (200, None)
            assert (await decide(client, method, PRIVATE_PATH, headers))[:2] == expected, (method, case)


#: Verbs outside the old deny-list (POST, PUT, PATCH, DELETE, TRACE) that this reader's HTTP parser accepts.
OTHER_VERBS = (
    "PROPPATCH", "MKCOL", "LOCK", "UNLOCK", "PROPFIND", "COPY", "MOVE", "PURGE", "SEARCH", "M-SEARCH",
)


async def test_every_verb_but_get_head_and_options_needs_the_csrf_token(client: Any, session: Any) -> None:
    _, cookie, csrf = session
    for method in OTHER_VERBS:
        status, body, _ = await decide(client, method, PRIVATE_PATH, cookie_headers(cookie))
        assert (status, body) == (401, error("authz.missing_csrf_token")), method
        status, body, _ = await decide(client, method, PRIVATE_PATH, cookie_headers(cookie, csrf="0" * 20))
        assert (status, body) == (401, error("authz.csrf_token_mismatch")), method
        status, _, headers = await decide(client, method, PRIVATE_PATH, cookie_headers(cookie, csrf=csrf))
        assert status == 200, method
        assert headers["Authorization"].startswith("Bearer "), method


async def test_safe_verbs_need_no_csrf_token(client: Any, session: Any) -> None:
    _, cookie, _ = session
    for method in ("GET", "HEAD", "OPTIONS"):
        status, _, headers = await decide(client, method, PRIVATE_PATH, cookie_headers(cookie))
        assert status == 200, method
        assert headers["Authorization"].startswith("Bearer "), method


#: (session cookie, X-CSRF-Token, error key) for a POST: without a session the CSRF check still comes first.
NO_SESSION_CSRF_CASES = [
    (None, None, "authz.missing_csrf_token"),
    (None, "0" * 20, "authz.csrf_token_mismatch"),
    ("f" * 32, None, "authz.missing_csrf_token"),
    ("f" * 32, "0" * 20, "authz.csrf_token_mismatch"),
]


async def test_csrf_is_checked_before_the_session_exists(client: Any) -> None:
    for cookie, csrf, key in NO_SESSION_CSRF_CASES:
        status, body, _ = await decide(client, "POST", PRIVATE_PATH, cookie_headers(cookie, csrf=csrf))
        assert (status, body) == (401, error(key)), (cookie, csrf)


async def test_csrf_protection_can_be_turned_off(
    aiohttp_client: Any, settings: Settings, clock: Any, session: Any
) -> None:
    client = await start_client(aiohttp_client, settings, clock, csrf_protection=False)
    _, cookie, _ = session
    assert (await decide(client, "POST", PRIVATE_PATH, cookie_headers(cookie)))[0] == 200


# --- the session itself -------------------------------------------------------------------------------


async def test_request_without_a_live_session_is_an_invalid_session(client: Any) -> None:
    for cookie_header in (None, "_barong_session=", "_barong_session=" + "f" * 32, "other_cookie=whatever"):
        headers = cookie_headers(None)
        if cookie_header is not None:
            headers["Cookie"] = cookie_header
        status, body, answer = await decide(client, "GET", PRIVATE_PATH, headers)
        assert (status, body) == (401, error("authz.invalid_session")), cookie_header
        assert "Authorization" not in answer


async def test_other_user_agent_is_a_mismatch_and_destroys_the_session(
    client: Any, services: Any, session: Any
) -> None:
    _, cookie, _ = session
    assert (await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie)))[0] == 200
    status, body, _ = await decide(
        client, "GET", PRIVATE_PATH, cookie_headers(cookie, user_agent=UA + " evil")
    )
    assert (status, body) == (401, error("authz.client_session_mismatch"))
    assert await services.sessions.get(session_hash(cookie)) is None
    # The legitimate browser is logged out too: the session is gone, not merely refused once.
    status, body, _ = await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie))
    assert (status, body) == (401, error("authz.invalid_session"))


async def test_missing_user_agent_matches_a_session_opened_without_one(
    client: Any, services: Any, clock: Any
) -> None:
    user = await new_user(services)
    cookie, _ = await open_session(services, user, clock, user_agent="")
    headers = cookie_headers(cookie, user_agent=None)
    response = await client.get(
        "/api/v2/auth/" + PRIVATE_PATH, headers=headers, skip_auto_headers=["User-Agent"]
    )
    assert response.status == 200
    status, body, _ = await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie, user_agent=UA))
    assert (status, body) == (401, error("authz.client_session_mismatch"))


#: (login address, request address, allowed): IPv4 sessions are pinned to the /16, IPv6 ones to the /96.
PINNING_CASES = [
    (UK_IP, "81.2.200.7", True),
    (UK_IP, "81.2.0.1", True),
    (UK_IP, "81.3.69.10", False),
    (UK_IP, "2001:db8:1::10", False),
    ("2001:db8:1::10", "2001:db8:1::ab:cd", True),
    ("2001:db8:1::10", "2001:db8:1::1:0:0:10", False),
    ("2001:db8:1::10", "2001:db8:2::10", False),
    ("2001:db8:1::10", UK_IP, False),
]


async def test_session_is_pinned_to_the_login_network(client: Any, services: Any, clock: Any) -> None:
    user = await new_user(services)
    for login_ip, request_ip, allowed in PINNING_CASES:
        cookie, _ = await open_session(services, user, clock, ip=login_ip)
        status, body, _ = await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie, ip=request_ip))
        case = (login_ip, request_ip)
        if allowed:
            assert status == 200, case
        else:
            assert (status, body) == (401, error("authz.client_session_mismatch")), case
            assert await services.sessions.get(session_hash(cookie)) is None, case


# --- sliding idle expiry (injected clock) ---------------------------------------------------------------


async def test_idle_session_expires_after_the_expire_time(
    client: Any, services: Any, clock: Any, session: Any
) -> None:
    _, cookie, _ = session
    clock.advance(1799)
    assert (await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie)))[0] == 200
    clock.advance(1800)
    status, body, _ = await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie))
    assert (status, body) == (401, error("authz.client_session_mismatch"))
    assert await services.sessions.get(session_hash(cookie)) is None


async def test_each_request_slides_the_idle_deadline(
    client: Any, services: Any, clock: Any, session: Any
) -> None:
    _, cookie, _ = session
    for _ in range(4):  # 4 × 1000 s: twice the idle lifetime, never idle for longer than 1000 s
        clock.advance(1000)
        assert (await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie)))[0] == 200
        record = await services.sessions.get(session_hash(cookie))
        assert record is not None
        assert record.expire_time == int(clock.now) + 1800
    clock.advance(1800)
    status, body, _ = await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie))
    assert (status, body) == (401, error("authz.client_session_mismatch"))


async def test_session_expire_time_is_configurable(
    aiohttp_client: Any, settings: Settings, services: Any, clock: Any
) -> None:
    client = await start_client(aiohttp_client, settings, clock, session_expire_time=60)
    user = await new_user(services)
    # The login deadline comes from the app's own session store, which has the 60 s setting.
    cookie, _ = await open_session(client.app[SERVICES], user, clock)
    clock.advance(59)
    assert (await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie)))[0] == 200
    clock.advance(60)
    assert (await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie)))[0] == 401


# --- revocation and state changes reach the next decision ----------------------------------------------


async def test_logged_out_session_is_refused_at_once(client: Any, make_user: Any) -> None:
    account = await make_user()
    cookie, csrf = await login(client, account)  # the real login endpoint, end to end
    assert (await decide(client, "POST", PRIVATE_PATH, cookie_headers(cookie, csrf=csrf)))[0] == 200
    logout = await client.delete("/api/v2/barong/identity/sessions", headers=cookie_headers(cookie))
    assert logout.status == 200, await logout.text()
    status, body, _ = await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie))
    assert (status, body) == (401, error("authz.invalid_session"))


async def test_revoked_sessions_are_refused_at_once(
    client: Any, services: Any, clock: Any, session: Any
) -> None:
    user, cookie, _ = session
    other, _ = await open_session(services, user, clock, ip="81.2.1.1")
    for each in (cookie, other):
        assert (await decide(client, "GET", PRIVATE_PATH, cookie_headers(each)))[0] == 200
    assert await services.sessions.destroy_all(user.uid) == 2
    for each in (cookie, other):
        status, body, _ = await decide(client, "GET", PRIVATE_PATH, cookie_headers(each))
        assert (status, body) == (401, error("authz.invalid_session"))


#: user state → may the user's session still pass (Barong: active and pending may).
STATE_CASES = [("active", True), ("pending", True), ("banned", False), ("locked", False), ("deleted", False)]


async def test_user_state_change_is_applied_at_once(client: Any, services: Any, clock: Any) -> None:
    for state, allowed in STATE_CASES:
        user = await new_user(services)
        cookie, _ = await open_session(services, user, clock)
        assert (await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie)))[0] == 200
        await services.users.update(user.uid, state=state)
        await announcer(client).user_changed(user.uid)
        status, body, _ = await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie))
        if allowed:
            assert status == 200, state
        else:
            assert (status, body) == (401, error("authz.user_not_active")), state


async def test_session_of_a_user_removed_from_the_database_is_invalid(
    client: Any, services: Any, session: Any
) -> None:
    user, cookie, _ = session
    assert (await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie)))[0] == 200
    async with services.engine.begin() as conn:
        await conn.execute(delete(users).where(users.c.id == user.id))
    await announcer(client).user_changed(user.uid)
    status, body, _ = await decide(client, "GET", PRIVATE_PATH, cookie_headers(cookie))
    assert (status, body) == (401, error("authz.invalid_session"))
    assert await services.sessions.get(session_hash(cookie)) is None


async def test_role_change_is_applied_at_once(client: Any, services: Any, session: Any) -> None:
    user, cookie, _ = session
    admin_path = "api/v2/barong/admin/users"
    status, body, _ = await decide(client, "GET", admin_path, cookie_headers(cookie))
    assert (status, body) == (401, error("authz.invalid_permission"))
    await services.users.update(user.uid, role="admin")
    await announcer(client).user_changed(user.uid)
    assert (await decide(client, "GET", admin_path, cookie_headers(cookie)))[0] == 200
