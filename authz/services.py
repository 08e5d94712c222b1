"""Opening the storage and the identity services once, for the web app and the CLI alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from authz.settings import Settings, async_database_url
from identity.activities import SqlActivityRepository
from identity.api_keys import SqlApiKeyRepository
from identity.changes import ChangePublisher
from identity.db import create_engine
from identity.permissions import SqlPermissionRepository
from identity.restrictions import SqlRestrictionRepository
from identity.secretbox import SecretBox, load_or_create_key, parse_key
from identity.service_accounts import SqlServiceAccountRepository
from identity.sessions import RedisSessionStore
from identity.signing_keys import SqlSigningKeyRepository
from identity.users import SqlUserRepository

ENCRYPTION_KEY_FILE = "encryption.key"


def encryption_key(settings: Settings) -> bytes:
    if settings.encryption_key:
        return parse_key(settings.encryption_key)
    return load_or_create_key(settings.data_dir / ENCRYPTION_KEY_FILE)


def open_redis(url: str, settings: Settings, *, decode_responses: bool = True) -> Redis:
    return Redis.from_url(
        url,
        decode_responses=decode_responses,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        max_connections=256,
    )


@dataclass
class Services:
    """Engine, Redis client and repositories, wired from settings."""

    settings: Settings
    engine: AsyncEngine
    redis: Redis
    box: SecretBox
    users: SqlUserRepository
    api_keys: SqlApiKeyRepository
    service_accounts: SqlServiceAccountRepository
    permissions: SqlPermissionRepository
    restrictions: SqlRestrictionRepository
    activities: SqlActivityRepository
    changes: ChangePublisher
    sessions: RedisSessionStore
    signing_keys: SqlSigningKeyRepository

    @classmethod
    def open(cls, settings: Settings, redis_url: str) -> Services:
        Path(settings.data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)  # as authz.bootstrap.migrate
        engine = create_engine(async_database_url(settings.database_url), timeout=settings.database_timeout)
        redis = open_redis(redis_url, settings)
        box = SecretBox(encryption_key(settings))
        changes = ChangePublisher(redis, settings.redis_namespace)
        return cls(
            settings=settings,
            engine=engine,
            redis=redis,
            box=box,
            users=SqlUserRepository(engine, settings.uid_prefix),
            api_keys=SqlApiKeyRepository(engine, box),
            service_accounts=SqlServiceAccountRepository(engine),
            permissions=SqlPermissionRepository(engine),
            restrictions=SqlRestrictionRepository(engine),
            activities=SqlActivityRepository(engine),
            changes=changes,
            sessions=RedisSessionStore(
                redis,
                changes,
                namespace=settings.redis_namespace,
                expire_time=settings.session_expire_time,
                token_expire_time=settings.refresh_token_expire_time,
            ),
            signing_keys=SqlSigningKeyRepository(engine, box),
        )

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()
