"""The Alembic migrations build exactly the schema that ``identity/db.py`` describes, on both backends."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from authz.settings import async_database_url
from identity.db import create_engine, metadata


def _compare(sync_conn: Any) -> list[Any]:
    context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_the_migrated_schema_matches_the_table_definitions(database_url: str) -> None:
    engine = create_engine(async_database_url(database_url))
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(_compare)
    finally:
        await engine.dispose()
    assert differences == []
