"""Labels and levels (Barong §4.7), with Barong's three default levels.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")

DEFAULT_LEVELS = (
    (1, "email", "verified", "User clicked on the confirmation link"),
    (2, "phone", "verified", "User has verified a phone number"),
    (3, "document", "verified", "User has verified identity documents"),
)


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("user_id", Id, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("user_id", "key", "scope", name="uq_labels_user_key_scope"),
    )
    levels = op.create_table(
        "levels",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("description", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        levels,
        [
            {"id": id_, "key": key, "value": value, "description": text, "created_at": now, "updated_at": now}
            for id_, key, value, text in DEFAULT_LEVELS
        ],
    )


def downgrade() -> None:
    op.drop_table("levels")
    op.drop_table("labels")
