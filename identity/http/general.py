"""Barong's general endpoints (``app/api/v2/public/general.rb``, mounted under identity and public):
ping, time, version, the front end's configuration, and the password strength meter."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from identity.http.params import read_params, required_strings
from identity.http.responses import json_response
from identity.password_policy import PasswordPolicy

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Barong mounts these endpoints twice; the error keys of ``/password/validate`` name the mount.
IDENTITY_PREFIXES = ("/api/v2/barong/identity", "/api/v2/identity")
PUBLIC_PREFIXES = ("/api/v2/barong/public", "/api/v2/public")

#: Captcha providers whose front-end widget needs an id (recaptcha's site key, geetest's captcha id).
_CAPTCHAS_WITH_ID = ("recaptcha", "geetest")


@dataclass(frozen=True, slots=True)
class PublicConfig:
    """What the general endpoints tell anonymous clients about this deployment."""

    session_expire_time: int
    captcha_type: str
    captcha_id: str | None
    phone_verification_type: str | None
    auth0_domain: str
    auth0_client_id: str
    version: str  # the package's version
    git_sha: str | None = None
    git_tag: str | None = None
    build_date: str | None = None  # RFC 3339


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    """Ruby's ``Hash#compact``: the keys whose value is nil are left out."""
    return {key: value for key, value in body.items() if value is not None}


class _GeneralHandlers:
    """The handlers, bound to one deployment's configuration, password policy and clock."""

    def __init__(self, config: PublicConfig, passwords: PasswordPolicy, clock: Callable[[], float]) -> None:
        self.config = config
        self.passwords = passwords
        self.clock = clock
        # Everything but the time is fixed for the process's life: encode the answers once.
        captcha_id = config.captcha_id if config.captcha_type in _CAPTCHAS_WITH_ID else None
        self.configs_body = orjson.dumps(
            _compact(
                {
                    "session_expire_time": config.session_expire_time,
                    "captcha_type": config.captcha_type,
                    "captcha_id": captcha_id,
                    "phone_verification_type": config.phone_verification_type,
                    "password_min_entropy": passwords.min_entropy,
                    # Barong's number was a gem's own scale; ours is bits of zxcvbn guesses (decisions.md).
                    "password_entropy_unit": "bits",
                    "password_regexp": passwords.regexp_text,
                }
            )
        )
        self.version_body = orjson.dumps(
            _compact(
                {
                    "git_tag": config.git_tag,
                    "git_sha": config.git_sha,
                    "build_date": config.build_date,
                    "version": config.version,
                }
            )
        )
        # Barong's ``compact`` keeps the empty strings of an unset Auth0; a front end tests for the keys.
        auth0 = {"auth0_domain": config.auth0_domain, "auth0_client_id": config.auth0_client_id}
        self.auth0_body = orjson.dumps({key: value for key, value in auth0.items() if value})

    async def ping(self, _request: web.Request) -> web.Response:
        return json_response({"ping": "pong"})

    async def server_time(self, _request: web.Request) -> web.Response:
        return json_response({"time": int(self.clock())})

    async def version(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.version_body, content_type="application/json")

    async def configs(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.configs_body, content_type="application/json")

    async def auth0(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.auth0_body, content_type="application/json")

    def validate_password(self, error_prefix: str) -> Handler:
        """``POST /password/validate`` → ``201 {"entropy": <bits>}`` (Grape answers a POST with 201)."""

        async def handle(request: web.Request) -> web.Response:
            params = await read_params(request)
            (password,) = required_strings(params, error_prefix, "password")
            # The policy scores a bounded prefix, so a long password costs no more than a short one.
            return json_response({"entropy": self.passwords.entropy(password)}, status=201)

        return handle


def add_routes(
    app: web.Application,
    config: PublicConfig,
    passwords: PasswordPolicy,
    *,
    clock: Callable[[], float] = time.time,
    wrap: Callable[[Handler], Handler] = lambda handler: handler,
) -> None:
    """Register the general endpoints under the identity and public prefixes; ``/configs/auth0`` is
    public only, as in Barong.  ``wrap`` is the application's error mapping (domain errors → HTTP)."""
    handlers = _GeneralHandlers(config, passwords, clock)
    for prefix in IDENTITY_PREFIXES + PUBLIC_PREFIXES:
        area = "public" if prefix in PUBLIC_PREFIXES else "identity"
        app.router.add_get(f"{prefix}/ping", wrap(handlers.ping))
        app.router.add_get(f"{prefix}/time", wrap(handlers.server_time))
        app.router.add_get(f"{prefix}/version", wrap(handlers.version))
        app.router.add_get(f"{prefix}/configs", wrap(handlers.configs))
        validate = handlers.validate_password(f"{area}.password")
        app.router.add_post(f"{prefix}/password/validate", wrap(validate))
        if area == "public":
            app.router.add_get(f"{prefix}/configs/auth0", wrap(handlers.auth0))
