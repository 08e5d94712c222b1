"""Security headers on every answer of the identity, resource, admin and token APIs, and no ``Server`` header
on any answer at all.

One ``on_response_prepare`` hook, so that aiohttp's own error pages carry them too.  Each header is only a
default: a handler that chose its own (the JWKS document's ``Cache-Control``, the admin console's) keeps
it.  ``Cache-Control: no-store`` because these answers carry sessions, tokens and personal data.  The
decision readers (``/api/v2/auth/...``, ``/_authz/nginx``) are skipped by a prefix test on the raw path:
their answers go to a proxy, not a browser, and their per-request cost is benchmarked.  They too lose the
``Server: Python/… aiohttp/…`` header that aiohttp adds before this hook runs (one dictionary deletion: the
versions tell a scanner which advisories to try).
"""

from __future__ import annotations

from aiohttp import hdrs, web

HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)
#: Raw path prefixes of the decision readers (``authz/http/envoy.py``, ``authz/http/nginx.py``).
SKIPPED = ("/api/v2/auth/", "/_authz/")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: no ``Server``; the headers above, unless the handler set its own or the path
    is skipped."""
    headers = response.headers
    headers.popall(hdrs.SERVER, None)
    if request.raw_path.startswith(SKIPPED):
        return
    for name, value in HEADERS:
        headers.setdefault(name, value)
