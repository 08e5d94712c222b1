"""The Envoy gRPC ext_authz reader: ``envoy.service.auth.v3.Authorization/Check`` on ``AUTHZ_GRPC_PORT``.

The same decision as the HTTP reader (:mod:`authz.http.envoy`), read from ``CheckRequest.attributes.request.http``
and answered in Envoy's terms: an ``OkHttpResponse`` whose headers (``Authorization``) Envoy sets on the upstream
request, with ``headers_to_remove: authorization`` on pass routes, or a ``DeniedHttpResponse`` carrying the real
HTTP status and the ``{"errors": [...]}`` body.  The server lives and dies with the app (``cleanup_ctx``): one per
worker process, the workers sharing the port through SO_REUSEPORT as they share the HTTP port.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable
from urllib.parse import unquote

import grpc
from aiohttp import web
from envoy.config.core.v3.base_pb2 import HeaderValue, HeaderValueOption
from envoy.service.auth.v3.attribute_context_pb2 import AttributeContext
from envoy.service.auth.v3.external_auth_pb2 import (
    CheckRequest,
    CheckResponse,
    DeniedHttpResponse,
    OkHttpResponse,
)
from envoy.service.auth.v3.external_auth_pb2_grpc import (
    AuthorizationServicer,
    add_AuthorizationServicer_to_server,
)
from envoy.type.v3.http_status_pb2 import HttpStatus
from google.rpc import code_pb2, status_pb2
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from authz.decision import CookieHeader, Decision, DecisionRequest, Deny
from authz.http.envoy import deny_body
from authz.http.nginx import DENY_BAD_METHOD, METHOD
from authz.http.state import STATE, AppState
from authz.metrics import TALLY
from authz.pipeline import DENY_BAD_PATH
from authz.settings import Settings

log = logging.getLogger(__name__)

#: Seconds in-flight checks may take to finish when the app stops.
SHUTDOWN_GRACE = 2.0

#: The gRPC status beside the HTTP one.  Envoy allows on ``OK`` only; the others just name the refusal.
_RPC_CODES = {401: code_pb2.UNAUTHENTICATED, 400: code_pb2.INVALID_ARGUMENT, 503: code_pb2.UNAVAILABLE}
_OK = status_pb2.Status(code=code_pb2.OK)
_JSON = HeaderValueOption(header=HeaderValue(key="content-type", value="application/json"))
#: A pass route: a client-supplied Authorization header must never reach the upstream.
_PASS = CheckResponse(status=_OK, ok_response=OkHttpResponse(headers_to_remove=["authorization"]))
_FORWARDING_HEADERS = ("X-Forwarded-For", "True-Client-IP")


def decision_request(
    http: AttributeContext.HttpRequest, source: str, peer: str | None, state: AppState
) -> DecisionRequest | None:
    """The pipeline's view of the request Envoy describes; ``None`` when its path is not ``/…``.

    The path and query are decoded as the HTTP reader's route decodes them (yarl), so both readers decide on
    the same string.  ``source`` is the downstream address Envoy reports, ``peer`` the gRPC connection's own
    (Envoy's): only a trusted peer may speak for the client, exactly as with ``X-Forwarded-For`` over HTTP.
    """
    raw_path, _, raw_query = http.path.partition("?")
    if not raw_path.startswith("/"):
        return None
    url = URL.build(path=raw_path, query_string=raw_query, encoded=True)
    headers = CIMultiDictProxy(CIMultiDict(_header_items(http)))
    return DecisionRequest(
        method=http.method,
        path=url.path[1:],
        headers=headers,
        cookies=CookieHeader(headers.get("Cookie", "")),
        client_ip=state.client_ip(peer, _forwarding(headers, source)),
        query_string=url.query_string,
    )


def _header_items(http: AttributeContext.HttpRequest) -> Iterable[tuple[str, str]]:
    if http.headers or not http.HasField("header_map"):
        return http.headers.items()
    # Envoy sends ``header_map`` instead when ``encode_raw_headers`` is set.
    return [(h.key, h.value or h.raw_value.decode("utf-8", "replace")) for h in http.header_map.headers]


def _forwarding(headers: CIMultiDictProxy[str], source: str) -> CIMultiDict[str]:
    """The proxy chain as the HTTP reader sees it, with Envoy's downstream address as the nearest hop."""
    chain: CIMultiDict[str] = CIMultiDict()
    for name in _FORWARDING_HEADERS:
        for value in headers.getall(name, ()):
            chain.add(name, value)
    if source:
        chain.add("X-Forwarded-For", source)
    return chain


def peer_address(peer: str) -> str | None:
    """``ipv4:10.0.0.2:41234`` / ``ipv6:%5B::1%5D:41234`` (gRPC's peer names) → ``host:port``; else ``None``."""
    kind, _, address = peer.partition(":")
    return unquote(address) if kind in ("ipv4", "ipv6") else None


def check_response(decision: Decision) -> CheckResponse:
    if isinstance(decision, Deny):
        return CheckResponse(
            status=status_pb2.Status(code=_RPC_CODES.get(decision.status, code_pb2.PERMISSION_DENIED)),
            denied_response=DeniedHttpResponse(
                # An open proto3 enum: Barong's restriction codes (471…) are not named in it but travel as numbers.
                status=HttpStatus(code=decision.status),  # type: ignore[arg-type]
                headers=[_JSON],
                body=deny_body(decision.reason).decode(),
            ),
        )
    if decision.principal is None:
        return _PASS
    # ``append`` unset means "overwrite" here: a client's own Authorization header is replaced, not kept.
    headers = [
        HeaderValueOption(header=HeaderValue(key=k.lower(), value=v)) for k, v in decision.headers.items()
    ]
    return CheckResponse(status=_OK, ok_response=OkHttpResponse(headers=headers))


class ExtAuthzService(AuthorizationServicer):
    """``Authorization/Check`` over the app's :class:`~authz.pipeline.DecisionPipeline`."""

    def __init__(self, state: AppState) -> None:
        self._state = state

    async def Check(self, request: CheckRequest, context: grpc.aio.ServicerContext) -> CheckResponse:
        started = time.perf_counter()
        http = request.attributes.request.http
        source = request.attributes.source.address.socket_address.address
        query = decision_request(http, source, peer_address(context.peer() or ""), self._state)
        if query is None:
            decision: Decision = DENY_BAD_PATH
        elif not METHOD.fullmatch(query.method):
            # Permission rows and the CSRF rule name upper-case verbs; ``get`` would dodge a GET DROP row.
            decision = DENY_BAD_METHOD
        else:
            decision = await self._state.pipeline.decide(query)
        result = "deny" if isinstance(decision, Deny) else "allow"
        TALLY.record(result, decision.reason, time.perf_counter() - started)
        return check_response(decision)


def install(app: web.Application, settings: Settings) -> None:
    """Serve ``Authorization/Check`` on ``settings.grpc_port`` for the app's lifetime.

    Appended after the app's resources: the server starts once the pipeline exists and stops before it closes.
    """
    app.cleanup_ctx.append(lambda app: _serving(app, settings))


async def _serving(app: web.Application, settings: Settings) -> AsyncIterator[None]:
    # SO_REUSEPORT only where workers share the port (grpc turns it on by default): a lone process must fail
    # to bind a port that is taken rather than share it with whoever holds it.
    server = grpc.aio.server(options=[("grpc.so_reuseport", int(settings.workers > 1))])
    add_AuthorizationServicer_to_server(ExtAuthzService(app[STATE]), server)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    if server.add_insecure_port(f"{host}:{settings.grpc_port}") == 0:
        raise OSError(f"cannot listen for gRPC ext_authz on {host}:{settings.grpc_port}")
    await server.start()
    log.info("gRPC ext_authz listening on %s:%s", host, settings.grpc_port)
    try:
        yield
    finally:
        await server.stop(SHUTDOWN_GRACE)


__all__ = ["ExtAuthzService", "check_response", "decision_request", "install", "peer_address"]
