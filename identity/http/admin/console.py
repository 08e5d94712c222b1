"""The admin console: a static page at ``/admin/`` (``/admin`` redirects there) that calls the admin API.

Three fixed files shipped in ``console/`` beside this module are read once, when the routes are registered,
and served from memory: no directory is served, so no request path can reach another file.  Every answer
carries a strict Content-Security-Policy (the page has no inline script or style and talks only to its own
origin), ``nosniff``, ``DENY`` framing and no referrer; the HTML is never cached, so a new release or a
signed-out browser never shows a stale page.  How the page authenticates its API calls is in
``console/console.js`` (``call``) and the README's "Admin console" section.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from identity.http.resource.context import Handler

ROOT = "/admin"
FILES = Path(__file__).parent / "console"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass(frozen=True)
class Asset:
    """One file of the console: where it is served, its bytes and how it may be cached."""

    url: str
    body: bytes
    content_type: str
    cache_control: str


def _asset(url: str, name: str, content_type: str, cache_control: str) -> Asset:
    return Asset(url, (FILES / name).read_bytes(), content_type, cache_control)


def load_assets() -> tuple[Asset, ...]:
    """The console's files (the script and style sheet are revalidated on every load: they are tiny)."""
    return (
        _asset(f"{ROOT}/", "index.html", "text/html", "no-store"),
        _asset(f"{ROOT}/console.js", "console.js", "text/javascript", "no-cache"),
        _asset(f"{ROOT}/console.css", "console.css", "text/css", "no-cache"),
    )


def _serve(asset: Asset) -> Handler:
    async def serve(_request: web.Request) -> web.StreamResponse:
        response = web.Response(body=asset.body, content_type=asset.content_type, charset="utf-8")
        response.headers.update(SECURITY_HEADERS)
        response.headers["Cache-Control"] = asset.cache_control
        return response

    return serve


async def _to_console(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(f"{ROOT}/", headers=SECURITY_HEADERS)


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Serve the console at ``/admin/`` (``/admin`` redirects there); ``wrap`` is the application's error
    mapping."""
    app.router.add_get(ROOT, wrap(_to_console))
    for asset in load_assets():
        app.router.add_get(asset.url, wrap(_serve(asset)))
