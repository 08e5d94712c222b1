"""The decision endpoint end to end over the real app: login, cookie decisions, the §2.7 catalogue."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

UA = "Mozilla/5.0 (X11; Linux x86_64) Test"
XFF = {"X-Forwarded-For": "81.2.69.10"}


async def login(client: Any, account: Any, **extra: Any) -> tuple[str, str]:
    headers = {"User-Agent": UA, **XFF}
    body = {"email": account.user.email, "password": account.password, **extra}
    response = await client.post("/api/v2/barong/identity/sessions", json=body, headers=headers)
    assert response.status == 200, await response.text()
    data = await response.json()
    cookie = response.cookies["_barong_session"].value
    client.session.cookie_jar.clear()  # tests send cookies explicitly; the jar would mix sessions up
    return cookie, data["csrf_token"]


def cookie_headers(cookie: str, **extra: str) -> dict[str, str]:
    return {"Cookie": f"_barong_session={cookie}", "User-Agent": UA, **XFF, **extra}


async def test_allowed_cookie_request_gets_a_verifiable_jwt(client: Any, make_user: Any) -> None:
    account = await make_user()
    cookie, _ = await login(client, account)
    response = await client.get("/api/v2/auth/api/v2/peatio/account/balances", headers=cookie_headers(cookie))
    assert response.status == 200, await response.text()
    assert await response.read() == b""
    scheme, token = response.headers["Authorization"].split(" ")
    assert scheme == "Bearer"
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(token)
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(
        token, jwt.PyJWK(key).key, algorithms=["RS256"], audience="peatio", issuer="barong"
    )
    assert claims["uid"] == account.user.uid
    assert claims["email"] == account.user.email
    assert claims["role"] == "member"
    assert claims["sub"] == "session"
    assert claims["aud"] == ["peatio", "barong"]
    assert claims["exp"] - claims["iat"] == 300
    assert len(claims["jti"]) == 20


@pytest.mark.parametrize(
    ("method", "path", "status", "key"),
    [
        ("GET", "api/v2/barong/management/users", 401, "authz.permission_denied"),
        ("GET", "api/v2/peatio/account/balances", 401, "authz.invalid_session"),
        ("POST", "api/v2/peatio/market/orders", 401, "authz.missing_csrf_token"),
    ],
)
async def test_denials_without_credentials(client: Any, method: str, path: str, status: int, key: str) -> None:
    response = await client.request(method, f"/api/v2/auth/{path}", headers={"User-Agent": UA})
    assert response.status == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert await response.json() == {"errors": [key]}


async def test_pass_rule_strips_client_authorization(client: Any) -> None:
    response = await client.get(
        "/api/v2/auth/api/v2/barong/public/ping", headers={"Authorization": "Bearer forged"}
    )
    assert response.status == 200
    assert "Authorization" not in response.headers
    assert response.headers["x-envoy-auth-headers-to-remove"] == "authorization"


async def raw_get(client: Any, target: str) -> tuple[int, bytes]:
    """Send ``target`` byte for byte (HTTP clients normalise dot segments away before sending)."""
    import asyncio

    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(
    "target",
    [
        "/api/v2/auth/api/v2/barong/public/../admin/users",
        "/api/v2/auth/api/v2/barong/public/%2E%2E/admin/users",
        "/api/v2/auth/api/v2/barong/public/%2e%2e%2fadmin/users",
        "/api/v2/auth/api/v2/barong/public/./x",
        "/api/v2/auth/api/v2/barong/public/a%00b",
        "/api/v2/auth/api/v2/barong/public/..%5cadmin",
    ],
)
async def test_path_traversal_never_passes_a_prefix_rule(client: Any, target: str) -> None:
    status, body = await raw_get(client, target)
    assert status == 400
    assert body == b'{"errors":["authz.invalid_path"]}'
