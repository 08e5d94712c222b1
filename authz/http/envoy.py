"""The Envoy HTTP ext_authz reader: ``/api/v2/auth/<original path>`` for every verb (Barong's authz route).

Envoy (and any proxy speaking the same contract) forwards the original method, path and query under the
prefix, and lets the request through only on exactly 200, copying the allowed upstream headers
(``Authorization``).  Pass routes tell Envoy to strip a client-supplied ``Authorization`` header.
"""

from __future__ import annotations

import time

import orjson
from aiohttp import web

from authz.decision import Allow, CookieHeader, DecisionRequest, Deny
from authz.http.state import STATE
from authz.metrics import TALLY

PREFIX = "/api/v2/auth/"
_STRIP_AUTHORIZATION = {"x-envoy-auth-headers-to-remove": "authorization"}
_bodies: dict[str, bytes] = {}


def deny_body(reason: str) -> bytes:
    body = _bodies.get(reason)
    if body is None:
        body = _bodies[reason] = orjson.dumps({"errors": [reason]})
    return body


def decision_request(request: web.Request, path: str) -> DecisionRequest:
    state = request.app[STATE]
    peer = request.transport.get_extra_info("peername") if request.transport else None
    peer_ip = peer[0] if isinstance(peer, tuple) else None
    return DecisionRequest(
        method=request.method,
        path=path,
        headers=request.headers,
        cookies=CookieHeader(request.headers.get("Cookie", "")),
        client_ip=state.client_ip(peer_ip, request.headers),
        query_string=request.query_string,
    )


def render(decision: Allow | Deny) -> web.Response:
    if isinstance(decision, Deny):
        return web.Response(status=decision.status, body=deny_body(decision.reason), content_type="application/json")
    if decision.principal is None:
        return web.Response(status=200, headers=_STRIP_AUTHORIZATION)
    return web.Response(status=200, headers=decision.headers)


async def decide(request: web.Request) -> web.Response:
    started = time.perf_counter()
    decision = await request.app[STATE].pipeline.decide(decision_request(request, request.match_info["path"]))
    if isinstance(decision, Deny):
        TALLY.record("deny", decision.reason, time.perf_counter() - started)
    else:
        TALLY.record("allow", decision.reason, time.perf_counter() - started)
    return render(decision)


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", PREFIX + "{path:.*}", decide)
