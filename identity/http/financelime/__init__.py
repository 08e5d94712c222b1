"""The Financelime-compatible token API: seed 000's paths, seed 001's as aliases, each with and without a
trailing slash (the original's router answered only one of the two)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from identity.http.financelime import handlers

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: (method, seed 000 path, seed 001 alias or None, handler)
ROUTES: tuple[tuple[str, str, str | None, Handler], ...] = (
    ("POST", "/v1/user", "/v1/user/signup", handlers.sign_up),
    ("PUT", "/v1/user", None, handlers.request_password_reset),
    ("POST", "/v1/user/password", None, handlers.request_password_reset),  # seed 001's reset request
    ("GET", "/u/{key}", None, handlers.confirm_sign_up),
    ("GET", "/p/{key}", None, handlers.confirm_password_reset),
    ("POST", "/v1/oauth", "/v1/oauth/create", handlers.create_tokens),
    ("PUT", "/v1/oauth", "/v1/oauth/refresh", handlers.refresh_tokens),
    ("GET", "/v1/sessions", "/v1/session/list", handlers.list_sessions),
    ("DELETE", "/v1/session", "/v1/session/remove", handlers.revoke_session),
    ("GET", "/v1/version", None, handlers.version),
)

#: Path prefixes of this API (its error pages use its own error shape).
PREFIXES = ("/v1/", "/u/", "/p/")


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register the routes; ``wrap`` is the application's error mapping for this API."""
    for method, path, alias, handler in ROUTES:
        wrapped = wrap(handler)
        for route in (path, alias):
            if route is not None:
                app.router.add_route(method, route, wrapped)
                app.router.add_route(method, route + "/", wrapped)
