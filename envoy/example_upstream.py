"""The example upstream of docker-compose.yml: answers with the caller the sidecar's JWT names.

Every request Envoy lets through carries ``Authorization: Bearer <JWT>`` (pass routes carry none); the JWT is
verified against the sidecar's JWKS with :mod:`authz.upstream`.  ``UPSTREAM_JWKS_URL`` and ``UPSTREAM_PORT``
configure it.
"""

from __future__ import annotations

import os

from aiohttp import web

from authz.upstream import CLAIMS, JwksKeys, jwt_middleware


def public(request: web.Request) -> bool:
    """Health checks, and the pass routes of policies/authz_rules.yml (``api/v2/<service>/public``)."""
    return request.path == "/healthz" or "/public/" in request.path


async def whoami(request: web.Request) -> web.Response:
    claims = request.get(CLAIMS) or {}
    return web.json_response({"path": request.path, "uid": claims.get("uid"), "role": claims.get("role")})


def build(jwks_url: str) -> web.Application:
    app = web.Application(middlewares=[jwt_middleware(JwksKeys(jwks_url), public=public)])
    app.router.add_route("*", "/{tail:.*}", whoami)
    return app


if __name__ == "__main__":
    url = os.environ.get("UPSTREAM_JWKS_URL", "http://authz:8080/.well-known/jwks.json")
    web.run_app(build(url), host="0.0.0.0", port=int(os.environ.get("UPSTREAM_PORT", "8000")))
