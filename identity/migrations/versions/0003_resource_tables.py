"""Resource API tables: service accounts, profiles, phones, documents and data storages (Barong §4.6, §5.3).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _timestamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def _user_id() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("user_id", Id, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "service_accounts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(32), nullable=False, unique=True),
        sa.Column("email", sa.String(255), nullable=False, unique=True),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("owner_id", Id, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        *_timestamps(),
    )
    op.create_index("ix_service_accounts_owner_id", "service_accounts", ["owner_id"])
    op.create_table(
        "profiles",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _user_id(),
        sa.Column("first_name", sa.String(255), nullable=True),
        sa.Column("last_name", sa.String(255), nullable=True),
        sa.Column("dob", sa.String(10), nullable=True),
        sa.Column("address", sa.String(255), nullable=True),
        sa.Column("postcode", sa.String(32), nullable=True),
        sa.Column("city", sa.String(255), nullable=True),
        sa.Column("country", sa.String(64), nullable=True),
        sa.Column("metadata", sa.Text, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        *_timestamps(),
    )
    op.create_index("ix_profiles_user_id", "profiles", ["user_id"])
    op.create_table(
        "phones",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _user_id(),
        sa.Column("country", sa.String(8), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
    )
    op.create_index("ix_phones_user_id", "phones", ["user_id"])
    op.create_index("ix_phones_number", "phones", ["number"])
    op.create_table(
        "documents",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _user_id(),
        sa.Column("doc_type", sa.String(64), nullable=False),
        sa.Column("doc_number", sa.String(128), nullable=True),
        sa.Column("doc_expire", sa.String(10), nullable=True),
        sa.Column("doc_category", sa.String(64), nullable=True),
        sa.Column("identificator", sa.String(255), nullable=True),
        sa.Column("metadata", sa.Text, nullable=True),
        sa.Column("upload", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(128), nullable=True),
        sa.Column("size", sa.BigInteger, nullable=True),
        *_timestamps(),
    )
    op.create_index("ix_documents_user_id", "documents", ["user_id"])
    op.create_table(
        "data_storages",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _user_id(),
        sa.Column("title", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("user_id", "title", name="uq_data_storages_user_title"),
    )


def downgrade() -> None:
    for table in ("data_storages", "documents", "phones", "profiles", "service_accounts"):
        op.drop_table(table)
