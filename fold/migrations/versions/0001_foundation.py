"""Foundation: buckets, records, audit, keys, users, custom fields.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(JSONB(), "postgresql")
ACTIVE_UNIQUE = "record_state = 'active' AND unique_key IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "buckets",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("webhook_secret", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_buckets"),
    )
    op.create_table(
        "records",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("uid", sa.String(24), nullable=False),
        sa.Column("data", JSONDoc, nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("last_updated", sa.DateTime(), nullable=False),
        sa.Column("record_state", sa.String(8), nullable=False),
        sa.Column("display_value", sa.Text(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("unique_key", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("bucket", "resource_type", "uid", name="pk_records"),
    )
    op.create_index(
        "ix_records_state",
        "records",
        ["bucket", "resource_type", "record_state", "last_updated"],
    )
    op.create_index(
        "uq_records_unique_key",
        "records",
        ["bucket", "resource_type", "unique_key"],
        unique=True,
        sqlite_where=sa.text(ACTIVE_UNIQUE),
        postgresql_where=sa.text(ACTIVE_UNIQUE),
    )
    op.create_table(
        "audit_entries",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("uid", sa.String(24), nullable=False),
        sa.Column("date", sa.DateTime(), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("record_uid", sa.String(24), nullable=False),
        sa.Column("user_uri", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("diff", JSONDoc, nullable=False),
        sa.PrimaryKeyConstraint("bucket", "uid", name="pk_audit_entries"),
    )
    op.create_index(
        "ix_audit_record", "audit_entries", ["bucket", "resource_type", "record_uid", "uid"]
    )
    op.create_index("ix_audit_date", "audit_entries", ["bucket", "date"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(24), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("username", sa.String(150), nullable=True),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("revoked", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_table(
        "key_grants",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("key_id", sa.String(24), nullable=False),
        sa.Column("policy", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "key_id", name="pk_key_grants"),
    )
    op.create_table(
        "users",
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_users"),
    )
    op.create_table(
        "user_grants",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("policy", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "username", name="pk_user_grants"),
    )
    op.create_table(
        "custom_fields",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("field", sa.String(200), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("form_type", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "resource_type", "field", name="pk_custom_fields"),
    )


def downgrade() -> None:
    for table in (
        "custom_fields",
        "user_grants",
        "users",
        "key_grants",
        "api_keys",
        "audit_entries",
        "records",
        "buckets",
    ):
        op.drop_table(table)
