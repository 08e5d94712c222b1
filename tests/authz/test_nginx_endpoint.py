"""The nginx auth_request reader (``GET /_authz/nginx``): the same decisions as ``/api/v2/auth/<path>``,
answered with 200, 401 or 403 only, the real status and key in headers; and the denial echo."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from authz.decision import Deny
from authz.http.nginx import render
from authz.settings import Settings
from tests.authz.helpers import UA, UK_IP, fast_settings, new_user, open_session

ENDPOINT = "/_authz/nginx"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return fast_settings(settings)


def original(method: str, uri: str, **headers: str) -> dict[str, str]:
    return {"X-Original-Method": method, "X-Original-URI": uri, "User-Agent": UA, "X-Forwarded-For": UK_IP, **headers}


async def raw_get(client: Any, target: str) -> tuple[int, str]:
    """The Envoy endpoint's status and error key for ``target`` sent byte for byte (no client normalising)."""
    import asyncio

    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nUser-Agent: {UA}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


@pytest.mark.parametrize(
    "uri",
    [
        "/api/v2/peatio/account/balances",
        "/api/v2/peatio/account/balances?currency=btc",
        "/api/v2/barong/public/ping",
        "/api/v2/barong/management/users",
        "/api/v2/barong/public/../admin/users",
        "/api/v2/barong/public/%2e%2e/admin/users",
        "/api/v2//barong/management",
        "/api/v2/barong/public/%2Fadmin",
        "/",
    ],
)
async def test_decides_as_the_envoy_endpoint_does(client: Any, uri: str) -> None:
    envoy_status, envoy_body = await raw_get(client, "/api/v2/auth" + uri)
    response = await client.get(ENDPOINT, headers=original("GET", uri))
    if envoy_status == 200:
        assert response.status == 200
    else:
        assert response.status == (401 if envoy_status == 401 else 403)
        assert response.headers["X-Authz-Status"] == str(envoy_status)
        assert f'"{response.headers["X-Authz-Error"]}"' in envoy_body


async def test_allowed_request_gets_the_jwt_for_the_original_method(client: Any, services: Any, clock: Any) -> None:
    user = await new_user(services)
    cookie, csrf = await open_session(services, user, clock)
    headers = original("POST", "/api/v2/peatio/market/orders", Cookie=f"_barong_session={cookie}")
    refused = await client.get(ENDPOINT, headers=headers)
    assert refused.status == 401
    assert refused.headers["X-Authz-Error"] == "authz.missing_csrf_token"

    allowed = await client.get(ENDPOINT, headers={**headers, "X-CSRF-Token": csrf})
    assert allowed.status == 200
    token = allowed.headers["Authorization"].removeprefix("Bearer ")
    assert jwt.decode(token, options={"verify_signature": False})["uid"] == user.uid


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the reader is what differs, not SQL
async def test_every_verb_but_get_head_and_options_needs_the_csrf_token(
    client: Any, services: Any, clock: Any
) -> None:
    user = await new_user(services)
    cookie, csrf = await open_session(services, user, clock)
    for method in ("PROPPATCH", "MKCOL", "LOCK", "CONNECT", "BREW"):  # BREW: any token nginx passes on
        headers = original(method, "/api/v2/peatio/account/balances", Cookie=f"_barong_session={cookie}")
        refused = await client.get(ENDPOINT, headers=headers)
        assert (refused.status, refused.headers["X-Authz-Error"]) == (401, "authz.missing_csrf_token"), method
        assert (await client.get(ENDPOINT, headers={**headers, "X-CSRF-Token": csrf})).status == 200, method
    for method in ("GET", "HEAD", "OPTIONS"):
        headers = original(method, "/api/v2/peatio/account/balances", Cookie=f"_barong_session={cookie}")
        allowed = await client.get(ENDPOINT, headers=headers)
        assert allowed.status == 200, method
        assert allowed.headers["Authorization"].startswith("Bearer "), method


async def test_pass_route_says_the_client_authorization_must_be_dropped(client: Any) -> None:
    response = await client.get(
        ENDPOINT, headers=original("GET", "/api/v2/barong/public/ping", Authorization="Bearer forged")
    )
    assert response.status == 200
    assert "Authorization" not in response.headers
    assert response.headers["X-Authz-Strip-Authorization"] == "true"


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ({"X-Original-URI": "/api/v2/barong/public/ping"}, "authz.invalid_original_method"),
        ({"X-Original-Method": "get", "X-Original-URI": "/api/v2/barong/public/ping"}, "authz.invalid_original_method"),
        ({"X-Original-Method": "GET"}, "authz.invalid_original_uri"),
        ({"X-Original-Method": "GET", "X-Original-URI": "api/v2/barong/public/ping"}, "authz.invalid_original_uri"),
        ({"X-Original-Method": "GET", "X-Original-URI": "http://evil/api/v2/barong/public"}, "authz.invalid_original_uri"),
        ({"X-Original-Method": "GET", "X-Original-URI": "/api/v2/barong/public#x"}, "authz.invalid_original_uri"),
    ],
)
async def test_missing_or_invalid_original_request_is_refused(client: Any, headers: dict[str, str], key: str) -> None:
    response = await client.get(ENDPOINT, headers=headers)
    assert response.status == 403
    assert response.headers["X-Authz-Status"] == "400"
    assert response.headers["X-Authz-Error"] == key


@pytest.mark.parametrize(("status", "answered"), [(401, 401), (403, 403), (471, 403), (423, 403), (503, 403)])
def test_only_401_and_403_are_answered(status: int, answered: int) -> None:
    response = render(Deny(status, "authz.restrict.maintenance"))
    assert response.status == answered
    assert response.headers["X-Authz-Status"] == str(status)


async def test_denial_echo_rebuilds_the_real_answer(client: Any) -> None:
    headers = {"X-Authz-Status": "471", "X-Authz-Error": "authz.restrict.maintenance"}
    response = await client.get("/_authz/nginx/denied", headers=headers)
    assert response.status == 471
    assert await response.json() == {"errors": ["authz.restrict.maintenance"]}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Authz-Status": "200", "X-Authz-Error": "authz.invalid_session"},
        {"X-Authz-Status": "471", "X-Authz-Error": "<script>"},
        {"X-Authz-Status": "abc", "X-Authz-Error": "authz.invalid_session"},
    ],
)
async def test_denial_echo_without_a_denial_fails_closed(client: Any, headers: dict[str, str]) -> None:
    response = await client.get("/_authz/nginx/denied", headers=headers)
    assert response.status == 503
    assert await response.json() == {"errors": ["authz.unavailable"]}
