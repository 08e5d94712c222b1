"""Liveness, readiness, metrics and the JWKS document."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web
from sqlalchemy import text

from authz.http.state import STATE
from authz.keys import jwks_of
from authz.metrics import render

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(state.redis.ping(), timeout=state.settings.redis_timeout)
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    try:
        async with asyncio.timeout(state.settings.database_timeout):
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["database"] = f"unavailable: {type(exc).__name__}"
    checks["invalidation"] = "ok" if state.listener.healthy else "down (caches bypassed)"
    checks["policy"] = "loaded" if state.policy.loaded else "not loaded"
    ready = checks["redis"] == "ok" and checks["database"] == "ok" and state.policy.loaded
    return web.Response(
        status=200 if ready else 503,
        body=orjson.dumps({"status": "ready" if ready else "unavailable", "checks": checks}),
        content_type="application/json",
    )


async def metrics(_request: web.Request) -> web.Response:
    body, content_type = render()
    return web.Response(body=body, headers={"Content-Type": content_type})


async def jwks_document(request: web.Request) -> web.Response:
    return web.Response(
        body=orjson.dumps(jwks_of(request.app[STATE].keyring)),
        content_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    app.router.add_get("/healthz", wrap(healthz))
    app.router.add_get("/readyz", wrap(readyz))
    app.router.add_get("/metrics", wrap(metrics))
    app.router.add_get("/.well-known/jwks.json", wrap(jwks_document))
