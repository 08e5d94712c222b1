"""Security headers: on every answer of the identity, resource, admin and token APIs (aiohttp's own error
pages too), a handler's own choice kept, and none on the decision readers' answers."""

from __future__ import annotations

from typing import Any

import pytest

from authz.http.security_headers import HEADERS, SKIPPED
from tests.identity.financelime.helpers import DEVICE
from tests.identity.financelime.helpers import headers as token_headers
from tests.identity.helpers import LOGIN, browser, cheap_argon2, login, with_cookie
from tests.resource.helpers import bearer

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_argon2(monkeypatch)


def test_the_headers_and_skipped_paths_are_these() -> None:
    assert dict(HEADERS) == EXPECTED
    assert SKIPPED == ("/api/v2/auth/", "/_authz/")


def assert_secured(response: Any, **own: str) -> None:
    for name, value in {**EXPECTED, **own}.items():
        assert response.headers.get(name) == value, (response.url, name, dict(response.headers))


@SQLITE
async def test_api_answers_carry_the_security_headers(make_client: Any, make_user: Any) -> None:
    api = await make_client()
    account = await make_user()
    body = {"email": account.user.email, "password": account.password}
    answers = [
        await api.post(LOGIN, json=body, headers=browser()),  # user data and a session
        await api.post(LOGIN, json={}, headers=browser()),  # a domain error
        await api.get("/api/v2/barong/identity/nowhere"),  # aiohttp's 404, rewritten to JSON
        await api.put("/api/v2/barong/identity/ping"),  # aiohttp's 405
        await api.get("/api/v2/barong/identity/ping"),
        await api.get("/api/v2/barong/resource/users/me", headers=bearer("Bearer x")),
        await api.get("/api/v2/barong/admin/users", headers=bearer("Bearer x")),
        await api.get("/healthz"),
    ]
    oauth = {"clientID": "PWA", "device": DEVICE, **body}
    answers.append(await api.post("/v1/oauth", json=oauth, headers=token_headers()))  # tokens
    answers.append(await api.post("/v1/oauth", json={}, headers=token_headers()))
    for response in answers:
        assert_secured(response)
    assert answers[0].status == 200 and answers[-2].status == 200


@SQLITE
async def test_a_handlers_own_headers_are_kept(make_client: Any) -> None:
    api = await make_client()
    assert_secured(await api.get("/.well-known/jwks.json"), **{"Cache-Control": "public, max-age=300"})
    console = await api.get("/admin/console.js")
    assert_secured(console, **{"Cache-Control": "no-cache"})
    assert "default-src 'self'" in console.headers["Content-Security-Policy"]


@SQLITE
async def test_decision_readers_answer_without_them(make_client: Any, make_user: Any) -> None:
    api = await make_client()
    cookie, _ = await login(api, await make_user())
    answers = [
        await api.get("/api/v2/auth/api/v2/peatio/account/balances", headers=with_cookie(cookie)),
        await api.get("/api/v2/auth/api/v2/peatio/account/balances", headers=browser()),
        await api.get("/api/v2/auth/api/v2/barong/identity/ping"),  # a pass route
        await api.get(
            "/_authz/nginx",
            headers=with_cookie(
                cookie, **{"X-Original-Method": "GET", "X-Original-URI": "/api/v2/peatio/account/balances"}
            ),
        ),
        await api.get("/_authz/nginx", headers={"X-Original-Method": "GET", "X-Original-URI": "/x/../y"}),
    ]
    assert [response.status for response in answers] == [200, 401, 200, 200, 403]
    for response in answers:
        assert not {name for name in EXPECTED if name in response.headers}, dict(response.headers)


@SQLITE
async def test_no_answer_names_the_server_software(make_client: Any, make_user: Any) -> None:
    api = await make_client()
    cookie, _ = await login(api, await make_user())
    nginx = {"X-Original-Method": "GET", "X-Original-URI": "/api/v2/peatio/account/balances"}
    answers = [
        await api.get("/api/v2/auth/api/v2/peatio/account/balances", headers=with_cookie(cookie)),  # allowed
        await api.get("/api/v2/auth/api/v2/peatio/account/balances", headers=browser()),  # denied
        await api.get("/api/v2/auth/api/v2/barong/identity/ping"),  # a pass route
        await api.get("/_authz/nginx", headers=with_cookie(cookie, **nginx)),
        await api.get("/_authz/nginx/denied", headers={"X-Authz-Status": "471"}),
        await api.post(LOGIN, json={}, headers=browser()),  # a domain error
        await api.get("/api/v2/barong/identity/ping"),
        await api.get("/api/v2/barong/identity/nowhere"),  # aiohttp's 404
        await api.put("/api/v2/barong/identity/ping"),  # aiohttp's 405
        await api.get("/nowhere"),  # no route at all
        await api.get("/.well-known/jwks.json"),
        await api.get("/healthz"),
        await api.get("/admin", allow_redirects=False),
        await api.get("/admin/"),
        await api.get("/admin/console.js"),  # a static file
        await api.post("/v1/oauth", json={}, headers=token_headers()),
    ]
    for response in answers:
        assert "Server" not in response.headers, (response.url, dict(response.headers))
    statuses = [response.status for response in answers]
    assert (statuses[0], statuses[1], statuses[7], statuses[14]) == (200, 401, 404, 200)
