"""SQL schema (SQLAlchemy Core) and the async engine.

The schema itself is created and evolved by the Alembic migrations in ``identity/migrations``; the table
objects here are what the repositories query.  SQLite (aiosqlite) is the embedded default, PostgreSQL
(asyncpg) the production backend.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    make_url,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

metadata = MetaData()

# BigInteger ids that autoincrement on SQLite too (SQLite only does so for INTEGER PRIMARY KEY).
Id = BigInteger().with_variant(Integer, "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _timestamps() -> list[Column]:  # type: ignore[type-arg]
    return [
        Column("created_at", DateTime(timezone=True), nullable=False, default=utcnow),
        Column("updated_at", DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow),
    ]


users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("uid", String(32), nullable=False, unique=True),
    Column("email", String(255), nullable=False, unique=True),
    Column("username", String(32), nullable=True, unique=True),
    Column("password_digest", String(255), nullable=False),
    Column("role", String(64), nullable=False, default="member"),
    Column("level", Integer, nullable=False, default=0),
    Column("otp", Boolean, nullable=False, default=False),
    Column("otp_secret_encrypted", Text, nullable=True),
    Column("otp_last_step", BigInteger, nullable=True),
    Column("state", String(32), nullable=False, default="pending"),
    Column("referral_id", Id, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("data", Text, nullable=True),
    *_timestamps(),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kid", String(255), nullable=False, unique=True),
    Column("key_holder_account_type", String(32), nullable=False, default="User"),
    Column("key_holder_account_id", Id, nullable=False),
    Column("algorithm", String(16), nullable=False, default="HS256"),
    Column("scope", Text, nullable=True),
    Column("secret_encrypted", Text, nullable=False),
    Column("state", String(32), nullable=False, default="active"),
    *_timestamps(),
    Index("ix_api_keys_holder", "key_holder_account_type", "key_holder_account_id"),
)

permissions = Table(
    "permissions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("role", String(64), nullable=False),
    Column("verb", String(16), nullable=False),
    Column("path", String(255), nullable=False),
    Column("action", String(16), nullable=False),
    Column("topic", String(64), nullable=True),
    *_timestamps(),
    Index("ix_permissions_role", "role"),
)

restrictions = Table(
    "restrictions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("category", String(32), nullable=False),
    Column("scope", String(32), nullable=False),
    Column("value", String(64), nullable=False),
    Column("code", Integer, nullable=False),
    Column("state", String(16), nullable=False, default="enabled"),
    *_timestamps(),
    UniqueConstraint("scope", "category", "value", name="uq_restrictions_scope_category_value"),
)

labels = Table(
    "labels",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(255), nullable=False),
    Column("value", String(255), nullable=False),
    Column("scope", String(16), nullable=False, default="public"),
    Column("description", String(255), nullable=True),
    *_timestamps(),
    UniqueConstraint("user_id", "key", "scope", name="uq_labels_user_key_scope"),
)

levels = Table(
    "levels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("key", String(255), nullable=False),
    Column("value", String(255), nullable=False),
    Column("description", String(255), nullable=True),
    *_timestamps(),
)

activities = Table(
    "activities",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, nullable=True),
    Column("target_uid", String(32), nullable=True),
    Column("category", String(16), nullable=False),
    Column("user_ip", String(64), nullable=False),
    Column("user_ip_country", String(64), nullable=True),
    Column("user_agent", Text, nullable=False),
    Column("topic", String(64), nullable=False),
    Column("action", String(255), nullable=False),
    Column("result", String(16), nullable=False),
    Column("data", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, default=utcnow),
    Index("ix_activities_user_id", "user_id"),
    Index("ix_activities_category_created_at", "category", "created_at"),
)


service_accounts = Table(
    "service_accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("uid", String(32), nullable=False, unique=True),
    Column("email", String(255), nullable=False, unique=True),
    Column("role", String(64), nullable=False, default="service_account"),
    Column("level", Integer, nullable=False, default=0),
    Column("state", String(32), nullable=False, default="pending"),
    Column("owner_id", Id, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    *_timestamps(),
    Index("ix_service_accounts_owner_id", "owner_id"),
)

profiles = Table(
    "profiles",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("first_name", String(255), nullable=True),
    Column("last_name", String(255), nullable=True),
    Column("dob", String(10), nullable=True),
    Column("address", String(255), nullable=True),
    Column("postcode", String(32), nullable=True),
    Column("city", String(255), nullable=True),
    Column("country", String(64), nullable=True),
    Column("metadata", Text, nullable=True),
    Column("state", String(16), nullable=False, default="drafted"),
    *_timestamps(),
    Index("ix_profiles_user_id", "user_id"),
)

phones = Table(
    "phones",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("country", String(8), nullable=False),
    Column("number", String(32), nullable=False),
    Column("validated_at", DateTime(timezone=True), nullable=True),
    *_timestamps(),
    Index("ix_phones_user_id", "user_id"),
    Index("ix_phones_number", "number"),
)

documents = Table(
    "documents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("doc_type", String(64), nullable=False),
    Column("doc_number", String(128), nullable=True),
    Column("doc_expire", String(10), nullable=True),
    Column("doc_category", String(64), nullable=True),
    Column("identificator", String(255), nullable=True),
    Column("metadata", Text, nullable=True),
    Column("upload", String(255), nullable=False),
    Column("content_type", String(128), nullable=True),
    Column("size", BigInteger, nullable=True),
    *_timestamps(),
    Index("ix_documents_user_id", "user_id"),
)

data_storages = Table(
    "data_storages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(64), nullable=False),
    Column("data", Text, nullable=False),
    *_timestamps(),
    UniqueConstraint("user_id", "title", name="uq_data_storages_user_title"),
)


invite_codes = Table(
    "invite_codes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("code", String(16), nullable=False, unique=True),
    Column("max_uses", Integer, nullable=False),
    Column("issued", Integer, nullable=False, default=0),  # confirmed sign-ups that used the code
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("created_by", String(64), nullable=True),
    *_timestamps(),
)

signups = Table(
    "signups",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(255), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 of the mailed confirmation key
    Column("language", String(8), nullable=False),
    Column("invite_code_id", Id, ForeignKey("invite_codes.id", ondelete="SET NULL"), nullable=True),
    Column("user_ip", String(64), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    *_timestamps(),
    Index("ix_signups_invite_code_id", "invite_code_id"),
)


def create_engine(url: str, *, timeout: float = 3.0) -> AsyncEngine:
    """An async engine for a ``sqlite+aiosqlite`` or ``postgresql+asyncpg`` URL."""
    if url.startswith("sqlite"):
        _create_owner_only(url)
        engine = create_async_engine(url, connect_args={"timeout": timeout})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_async_engine(
        url,
        pool_size=5,
        max_overflow=5,
        pool_pre_ping=True,
        pool_timeout=timeout,
        connect_args={"timeout": timeout, "command_timeout": timeout * 2},
    )


def _create_owner_only(url: str) -> None:
    """Create the SQLite database file of ``url``, empty and mode 0600, unless it exists already.

    SQLite would create it under the umask (0644 with the usual one: password hashes readable by every local
    user), and it gives the ``-wal`` and ``-shm`` files the database file's mode: made here first, all three
    are the service user's only.  An existing file keeps the mode its operator gave it; a missing directory
    is left for SQLite to report.
    """
    parsed = make_url(url)
    database = parsed.database
    if not database or database == ":memory:" or "uri" in parsed.query:
        return
    with contextlib.suppress(FileExistsError, FileNotFoundError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),  # RFC 7638 thumbprint of the public key
    Column("private_key_encrypted", Text, nullable=False),  # PKCS#8 PEM, SecretBox under "signing_key:<kid>"
    Column("state", String(16), nullable=False),  # active | retiring
    Column("retire_at", DateTime(timezone=True), nullable=True),  # retiring: unpublished from then on
    *_timestamps(),
)
