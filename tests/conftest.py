"""Shared fixtures: real PostgreSQL, SQLite and Redis, a controllable clock, and the running app.

Storage tests are parametrised over ``sqlite`` and ``postgresql``. PostgreSQL is the machine's
(127.0.0.1:5432: a database of the run's own, created through ``test``, truncated per test); Redis is the
machine's (127.0.0.1:6379, a dedicated DB number, a fresh key namespace per test, deleted after it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from authz.app import build_app
from authz.bootstrap import seed_defaults
from authz.services import Services
from authz.settings import Settings, load_settings
from identity.db import create_engine
from identity.login import otp_context
from identity.migrate import upgrade
from identity.models import User
from identity.passwords import hash_password
from tests.authz.geo_helpers import write_test_mmdb
from tests.authz.helpers import drop_redis_namespace, signing_key_pem

POSTGRES_URL = os.environ.get("AUTHZ_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("AUTHZ_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
TABLES = (
    "signups",
    "invite_codes",
    "activities",
    "api_keys",
    "restrictions",
    "permissions",
    "labels",
    "data_storages",
    "documents",
    "phones",
    "profiles",
    "service_accounts",
    "users",
    "signing_keys",
)
BACKENDS = ("sqlite", "postgresql")


class FakeClock:
    """Epoch seconds that tests move by hand (sliding expiry, nonce windows, TOTP steps)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _pg_async(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


async def _admin(statement: str) -> None:
    engine = create_engine(_pg_async(POSTGRES_URL))
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(statement))
    await engine.dispose()


@pytest.fixture(scope="session")
def postgres_ready() -> Iterator[str]:
    """A database of this test run's own (created from the ``test`` connection, dropped at the end).

    Concurrent runs on one machine (developers, CI) never see each other's tables.
    """
    name = f"authz_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_admin(f"CREATE DATABASE {name}"))
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    upgrade(_pg_async(url))
    yield url
    asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def geoip_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_mmdb(tmp_path_factory.mktemp("geo") / "test.mmdb")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "authz.sqlite3"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_ready")

    async def truncate() -> None:
        engine = create_engine(_pg_async(url))
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        await engine.dispose()

    asyncio.run(truncate())
    yield url


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str, geoip_db: Path) -> Iterator[Settings]:
    """Settings of one test. Its Redis keys live under a namespace of its own, deleted afterwards
    (no FLUSHDB: concurrent test runs share the Redis DB)."""
    namespace = f"t{uuid.uuid4().hex[:12]}"
    yield load_settings(
        env={},
        data_dir=tmp_path / "data",
        database_url=database_url,
        redis_url=redis_url,
        redis_namespace=namespace,
        session_cookie_secure=False,
        geoip_db=geoip_db,
    )
    drop_redis_namespace(redis_url, namespace)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    opened = Services.open(settings, settings.redis_url)
    await seed_defaults(opened)
    yield opened
    await opened.close()


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings, services: Services, clock: FakeClock) -> Any:
    """A test client of the whole app (decision endpoint, identity API), default policies loaded."""
    app = build_app(settings, settings.redis_url, clock=clock)
    return await aiohttp_client(app)


@pytest.fixture
def make_client(aiohttp_client: Any, settings: Settings, services: Any, clock: Any) -> Any:
    """A client of the whole app built with changed settings; it keeps no cookies (each request says which)."""

    async def make(**changes: Any) -> Any:
        changed = replace(settings, **{"jwt_private_key": signing_key_pem(), **changes})
        app = build_app(changed, settings.redis_url, clock=clock)
        return await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar())

    return make


@pytest.fixture
async def api(make_client: Any) -> Any:
    """A client of the whole app with default settings (no cookie jar: each request says what it sends)."""
    return await make_client()


@dataclass
class Account:
    user: User
    password: str
    otp_secret: str | None = None


@pytest.fixture
def make_user(services: Services) -> Any:
    """Create users directly through the repository (``await make_user(role=..., otp=True)``)."""

    async def make(
        email: str | None = None,
        password: str = "Secret-Passw0rd",
        role: str = "member",
        state: str = "active",
        otp: bool = False,
    ) -> Account:
        email = email or f"u{uuid.uuid4().hex[:10]}@example.com"
        user = await services.users.create(
            email=email, password_digest=hash_password(password), role=role, state=state
        )
        secret = None
        if otp:
            from identity.totp import new_secret

            secret = new_secret()
            encrypted = services.box.encrypt(secret, context=otp_context(user.uid))
            updated = await services.users.update(user.uid, otp=True, otp_secret_encrypted=encrypted)
            assert updated is not None
            user = updated
        return Account(user, password, secret)

    return make

