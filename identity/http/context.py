"""What the identity handlers need from the application, under one typed app key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from identity.accounts import AccountService
from identity.activity_log import ClientInfo
from identity.auth0 import Auth0Verifier
from identity.captcha import Captcha
from identity.labels import SqlLabelRepository
from identity.login import LoginService
from identity.users import SqlUserRepository


@dataclass(frozen=True)
class IdentityContext:
    login: LoginService
    accounts: AccountService
    users: SqlUserRepository
    labels: SqlLabelRepository
    captcha: Captcha
    auth0: Auth0Verifier
    client_info: Callable[[web.Request], ClientInfo]
    cookie_name: str
    cookie_secure: bool
    cookie_max_age: int = 86_400


IDENTITY = web.AppKey("identity", IdentityContext)
