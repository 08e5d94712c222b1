"""Health, readiness, metrics and JWKS endpoints, and failing closed when PostgreSQL goes away."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest

from authz.app import build_app
from authz.bootstrap import seed_defaults
from authz.services import Services
from tests.authz.test_decision_endpoint import cookie_headers, login
from tests.faults import TcpProxy

BALANCES = "/api/v2/auth/api/v2/peatio/account/balances"


async def test_healthz_and_readyz_report_ok(client: Any) -> None:
    assert (await client.get("/healthz")).status == 200
    response = await client.get("/readyz")
    assert response.status == 200
    body = await response.json()
    assert body["checks"] == {"redis": "ok", "database": "ok", "invalidation": "ok", "policy": "loaded"}


async def test_metrics_count_decisions_by_result_and_reason(client: Any) -> None:
    await client.get("/api/v2/auth/api/v2/peatio/account/balances")
    await client.get("/api/v2/auth/api/v2/barong/public/ping")
    text = await (await client.get("/metrics")).text()
    assert 'authz_decisions_total{reason="authz.invalid_session",result="deny"}' in text
    assert 'authz_decisions_total{reason="pass_rule",result="allow"}' in text
    assert "authz_decision_seconds_bucket" in text


async def test_jwks_publishes_the_signing_key_under_its_kid(client: Any, make_user: Any) -> None:
    document = await (await client.get("/.well-known/jwks.json")).json()
    [key] = document["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig" and key["kid"]
    assert "d" not in key  # public half only
    cookie, _ = await login(client, await make_user())
    token = (await client.get(BALANCES, headers=cookie_headers(cookie))).headers["Authorization"][7:]
    assert jwt.get_unverified_header(token)["kid"] == key["kid"]


@pytest.fixture
async def pg_proxy(postgres_ready: str) -> Any:
    target = urlsplit(postgres_ready)
    proxy = await TcpProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    yield proxy, postgres_ready.replace(f"{target.hostname}:{target.port}", f"127.0.0.1:{proxy.port}")
    await proxy.stop()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_database_outage_fails_closed_and_recovers(
    aiohttp_client: Any, settings: Any, services: Services, make_user: Any, clock: Any, pg_proxy: Any
) -> None:
    proxy, proxied_url = pg_proxy
    proxied = dataclasses.replace(settings, database_url=proxied_url, database_timeout=1.0)
    client = await aiohttp_client(build_app(proxied, proxied.redis_url, clock=clock))
    seen, unseen = await make_user(), await make_user()
    seen_cookie, _ = await login(client, seen)
    unseen_cookie, _ = await login(client, unseen)
    assert (await client.get(BALANCES, headers=cookie_headers(seen_cookie))).status == 200

    await proxy.stop()
    # A user already in the in-memory snapshot is still decided; one that needs SQL is refused (503).
    assert (await client.get(BALANCES, headers=cookie_headers(seen_cookie))).status == 200
    response = await client.get(BALANCES, headers=cookie_headers(unseen_cookie))
    assert response.status == 503
    assert await response.json() == {"errors": ["authz.unavailable"]}
    login_attempt = await client.post(
        "/api/v2/barong/identity/sessions", json={"email": unseen.user.email, "password": unseen.password}
    )
    assert login_attempt.status == 503
    assert await login_attempt.json() == {"errors": ["identity.unavailable"]}
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["checks"]["database"].startswith("unavailable")

    await proxy.start()
    for _ in range(50):
        response = await client.get(BALANCES, headers=cookie_headers(unseen_cookie))
        if response.status == 200:
            break
        await asyncio.sleep(0.1)
    assert response.status == 200
    assert (await client.get("/readyz")).status == 200


async def test_seeding_is_idempotent(services: Services) -> None:
    assert await seed_defaults(services) == 0


@pytest.mark.parametrize(
    ("method", "path", "status", "key"),
    [
        ("GET", "/no/such/route", 404, "route.not_found"),
        ("PUT", "/api/v2/barong/identity/sessions", 405, "route.method_not_allowed"),
        ("POST", "/healthz", 405, "route.method_not_allowed"),
    ],
)
async def test_unknown_routes_and_methods_answer_in_the_error_envelope(
    client: Any, method: str, path: str, status: int, key: str
) -> None:
    response = await client.request(method, path)
    assert response.status == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert await response.json() == {"errors": [key]}


async def test_a_body_over_the_limit_answers_413_in_the_error_envelope(client: Any) -> None:
    response = await client.post(
        "/api/v2/barong/identity/sessions", data=b"x" * (1024**2 + 1), headers={"Content-Type": "application/json"}
    )
    assert response.status == 413
    assert await response.json() == {"errors": ["request.too_large"]}


async def test_an_unexpected_error_outside_an_api_handler_is_still_the_json_envelope(
    aiohttp_client: Any, settings: Any, services: Services, clock: Any
) -> None:
    async def broken(_request: Any) -> Any:
        raise RuntimeError("boom")

    app = build_app(settings, settings.redis_url, clock=clock)
    app.router.add_get("/broken", broken)
    response = await (await aiohttp_client(app)).get("/broken")
    assert response.status == 500
    assert await response.json() == {"errors": ["server.internal_error"]}
