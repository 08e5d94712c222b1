"""Security headers on every answer of the identity, resource, admin and token APIs.

One ``on_response_prepare`` hook, so that aiohttp's own error pages carry them too.  Each header is only a
default: a handler that chose its own (the JWKS document's ``Cache-Control``, the admin console's) keeps
it.  ``Cache-Control: no-store`` because these answers carry sessions, tokens and personal data.  The
decision readers (``/api/v2/auth/...``, ``/_authz/nginx``) are skipped by a prefix test on the raw path:
their answers go to a proxy, not a browser, and their per-request cost is benchmarked.
"""

from __future__ import annotations

from aiohttp import web

HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)
#: Raw path prefixes of the decision readers (``authz/http/envoy.py``, ``authz/http/nginx.py``).
SKIPPED = ("/api/v2/auth/", "/_authz/")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the headers above, unless the handler set its own or the path is skipped."""
    if request.raw_path.startswith(SKIPPED):
        return
    headers = response.headers
    for name, value in HEADERS:
        headers.setdefault(name, value)
