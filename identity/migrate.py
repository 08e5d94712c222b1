"""Apply the Alembic migrations (``authz db upgrade``; also run by ``authz serve`` at start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(async_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", async_url.replace("%", "%%"))
    return config


def upgrade(async_url: str, revision: str = "head") -> None:
    """Bring the database at ``async_url`` (an asyncio-driver URL) up to ``revision``.

    Runs its own event loop: call it before the service's loop starts (or from a worker thread).
    """
    command.upgrade(alembic_config(async_url), revision)
