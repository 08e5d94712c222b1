"""The application's typed state, shared by the web handlers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from authz.invalidation import ChangeListener
from authz.keys import Keyring
from authz.pipeline import DecisionPipeline
from authz.policy import PolicyState
from authz.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    redis: Redis
    keyring: Keyring
    policy: PolicyState
    listener: ChangeListener
    pipeline: DecisionPipeline
    client_ip: Callable[[str | None, Mapping[str, str]], str]


STATE = web.AppKey("authz_state", AppState)
