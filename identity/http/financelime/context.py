"""What the token API's handlers need from the application, under one typed app key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from identity.activity_log import ClientInfo
from identity.bearer import BearerVerifier
from identity.signups import SignupService
from identity.token_sessions import TokenSessionService
from identity.users import SqlUserRepository


@dataclass(frozen=True)
class FinancelimeContext:
    """The token API's services (``signups``, ``tokens``) and the upstream-JWT check used behind a gateway."""

    signups: SignupService
    tokens: TokenSessionService
    bearer: BearerVerifier
    users: SqlUserRepository
    client_info: Callable[[web.Request], ClientInfo]
    version: str
    build: str


FINANCELIME = web.AppKey("financelime", FinancelimeContext)
