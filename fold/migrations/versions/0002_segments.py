"""Segments, their include/exclude lists, fieldsets and postcode tables.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("uid", sa.String(24), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("segment_type", sa.String(16), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("view_context", JSONDoc, nullable=False),
        sa.Column("parent_uid", sa.String(24), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("rules", JSONDoc, nullable=False),
        sa.Column("system_segment", sa.Boolean(), nullable=False),
        sa.Column("tags", JSONDoc, nullable=False),
        sa.Column("mailchimp_sync", sa.Boolean(), nullable=False),
        sa.Column("legacy_uid", sa.Text(), nullable=True),
        sa.Column("record_state", sa.String(8), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("last_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "uid", name="pk_segments"),
    )
    op.create_index("ix_segments_state", "segments", ["bucket", "record_state", "name"])
    op.create_index("ix_segments_parent", "segments", ["bucket", "parent_uid"])
    op.create_table(
        "segment_uris",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("segment_uid", sa.String(24), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("record_uid", sa.String(24), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "bucket", "segment_uid", "kind", "record_uid", name="pk_segment_uris"
        ),
    )
    op.create_table(
        "fieldsets",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("uid", sa.String(24), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("fields", JSONDoc, nullable=False),
        sa.Column("applicable_resources", JSONDoc, nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("last_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "uid", name="pk_fieldsets"),
    )
    op.create_table(
        "postcodes",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("postcode", sa.String(12), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lng", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "postcode", name="pk_postcodes"),
    )


def downgrade() -> None:
    for table in ("postcodes", "fieldsets", "segment_uris", "segments"):
        op.drop_table(table)
