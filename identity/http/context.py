"""What the identity handlers need from the application, under one typed app key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from identity.login import ClientInfo, LoginService
from identity.users import SqlUserRepository


@dataclass(frozen=True)
class IdentityContext:
    login: LoginService
    users: SqlUserRepository
    client_info: Callable[[web.Request], ClientInfo]
    cookie_name: str
    cookie_secure: bool
    cookie_max_age: int = 86_400


IDENTITY = web.AppKey("identity", IdentityContext)
