"""The nginx ``auth_request`` reader: ``GET /_authz/nginx`` with the original request in headers.

nginx sends the auth subrequest as a body-less GET to a fixed URI, passes the original verb and target only
in the headers it is told to set (``X-Original-Method``, ``X-Original-URI`` = ``$request_uri``), and accepts
only 2xx, 401 and 403 from it: any other status becomes a 500.  So this reader makes the same decision as
``/api/v2/auth/<path>`` (the same :class:`~authz.pipeline.DecisionPipeline`, the target decoded as aiohttp
decodes Envoy's) and answers

* ``200`` with ``Authorization: Bearer <JWT>`` for the upstream, or, on a pass route, without it and with
  ``X-Authz-Strip-Authorization: true`` (the shipped config always replaces the client's header with the
  sidecar's, which is then empty);
* ``401`` (the decision's status is 401) or ``403`` (any other status: 400, 423, 471, 503...) with the real
  status in ``X-Authz-Status`` and the error key in ``X-Authz-Error``.

nginx cannot ``return`` a status held in a variable, so its ``error_page`` handler asks
``GET /_authz/nginx/denied`` to rebuild the client's answer from those two headers (only on denials).
"""

from __future__ import annotations

import re
import time

from aiohttp import web
from yarl import URL

from authz.decision import Decision, Deny
from authz.http.envoy import decision_request, deny_body
from authz.http.state import STATE
from authz.metrics import TALLY

PATH = "/_authz/nginx"
DENIED_PATH = "/_authz/nginx/denied"
STATUS_HEADER = "X-Authz-Status"
ERROR_HEADER = "X-Authz-Error"
STRIP_HEADER = "X-Authz-Strip-Authorization"

DENY_BAD_METHOD = Deny(400, "authz.invalid_original_method")
DENY_BAD_URI = Deny(400, "authz.invalid_original_uri")

#: An HTTP method as nginx accepts one: upper-case letters only (the gRPC reader holds Envoy's to it too).
METHOD = re.compile(r"[A-Z]{1,20}")
_ERROR_KEY = re.compile(r"authz\.[a-z0-9_.]{1,100}")
_STRIP = {STRIP_HEADER: "true"}


def render(decision: Decision) -> web.Response:
    """The decision as nginx's auth_request can take it: 200, or 401/403 with the real answer in headers."""
    if isinstance(decision, Deny):
        headers = {STATUS_HEADER: str(decision.status), ERROR_HEADER: decision.reason}
        return web.Response(
            status=401 if decision.status == 401 else 403,
            body=deny_body(decision.reason),
            content_type="application/json",
            headers=headers,
        )
    if decision.principal is None:
        return web.Response(status=200, headers=_STRIP)
    return web.Response(status=200, headers=decision.headers)


async def decide(request: web.Request) -> web.Response:
    started = time.perf_counter()
    decision = await _decide(request)
    if isinstance(decision, Deny):
        TALLY.record("deny", decision.reason, time.perf_counter() - started)
    else:
        TALLY.record("allow", decision.reason, time.perf_counter() - started)
    return render(decision)


async def _decide(request: web.Request) -> Decision:
    method = request.headers.get("X-Original-Method", "")
    if not METHOD.fullmatch(method):
        return DENY_BAD_METHOD
    target = request.headers.get("X-Original-URI", "")
    if not target.startswith("/") or any(c in target for c in " \r\n\t#"):
        return DENY_BAD_URI
    raw_path, _, raw_query = target.partition("?")
    try:
        # Decoded as aiohttp decodes the Envoy reader's ``{path}``: the pipeline sees the same string.
        url = URL.build(path=raw_path, query_string=raw_query, encoded=True)
        path, query = url.path, url.query_string
    except ValueError:
        return DENY_BAD_URI
    decision_input = decision_request(request, path[1:])
    decision_input.method = method
    decision_input.query_string = query
    return await request.app[STATE].pipeline.decide(decision_input)


async def denied(request: web.Request) -> web.Response:
    """The client's answer to a denial: the real status and ``{"errors": [key]}`` from nginx's variables.

    Only what a denial can carry is echoed (a 4xx/5xx status, an ``authz.`` key); anything else, e.g. the
    sidecar did not answer at all, is ``503 authz.unavailable`` (fail closed).
    """
    status, reason = request.headers.get(STATUS_HEADER, ""), request.headers.get(ERROR_HEADER, "")
    if not (status.isdigit() and 400 <= int(status) <= 599 and _ERROR_KEY.fullmatch(reason)):
        status, reason = "503", "authz.unavailable"
    return web.Response(status=int(status), body=deny_body(reason), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, decide)
    app.router.add_get(DENIED_PATH, denied)
