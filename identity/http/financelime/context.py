"""What the token API's handlers need from the application, under one typed app key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from identity.activity_log import ClientInfo
from identity.callers import UpstreamCallers
from identity.signups import SignupService
from identity.token_sessions import TokenSessionService


@dataclass(frozen=True)
class FinancelimeContext:
    """The token API's services (``signups``, ``tokens``) and the caller check (the upstream JWT used behind
    a gateway, and the permission table for every bearer)."""

    signups: SignupService
    tokens: TokenSessionService
    callers: UpstreamCallers
    client_info: Callable[[web.Request], ClientInfo]
    version: str
    build: str


FINANCELIME = web.AppKey("financelime", FinancelimeContext)
