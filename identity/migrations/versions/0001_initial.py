"""Initial schema: users, api_keys, permissions, restrictions, activities.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _timestamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(32), nullable=False, unique=True),
        sa.Column("email", sa.String(255), nullable=False, unique=True),
        sa.Column("username", sa.String(32), nullable=True, unique=True),
        sa.Column("password_digest", sa.String(255), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("otp", sa.Boolean, nullable=False),
        sa.Column("otp_secret_encrypted", sa.Text, nullable=True),
        sa.Column("otp_last_step", sa.BigInteger, nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("referral_id", Id, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("data", sa.Text, nullable=True),
        *_timestamps(),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("kid", sa.String(255), nullable=False, unique=True),
        sa.Column("key_holder_account_type", sa.String(32), nullable=False),
        sa.Column("key_holder_account_id", Id, nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("scope", sa.Text, nullable=True),
        sa.Column("secret_encrypted", sa.Text, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        *_timestamps(),
    )
    op.create_index("ix_api_keys_holder", "api_keys", ["key_holder_account_type", "key_holder_account_id"])
    op.create_table(
        "permissions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("verb", sa.String(16), nullable=False),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("topic", sa.String(64), nullable=True),
        *_timestamps(),
    )
    op.create_index("ix_permissions_role", "permissions", ["role"])
    op.create_table(
        "restrictions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("value", sa.String(64), nullable=False),
        sa.Column("code", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("scope", "category", "value", name="uq_restrictions_scope_category_value"),
    )
    op.create_table(
        "activities",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("user_id", Id, nullable=True),
        sa.Column("target_uid", sa.String(32), nullable=True),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("user_ip", sa.String(64), nullable=False),
        sa.Column("user_ip_country", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.Text, nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("action", sa.String(255), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("data", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_activities_user_id", "activities", ["user_id"])
    op.create_index("ix_activities_category_created_at", "activities", ["category", "created_at"])


def downgrade() -> None:
    for table in ("activities", "restrictions", "permissions", "api_keys", "users"):
        op.drop_table(table)
