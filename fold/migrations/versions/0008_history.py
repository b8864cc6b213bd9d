"""History: numbered segment versions, membership snapshots (roaring bitmaps over a
stable number per record), their schedules.

Revision ID: 0008
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0004"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "segment_versions",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("segment_uid", sa.String(24), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("user_uri", sa.Text(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("definition", JSONDoc, nullable=False),
        sa.PrimaryKeyConstraint("bucket", "segment_uid", "number", name="pk_segment_versions"),
    )
    op.create_table(
        "record_numbers",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("uid", sa.String(24), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "number", name="pk_record_numbers"),
    )
    op.create_index(
        "uq_record_numbers_record",
        "record_numbers",
        ["bucket", "resource_type", "uid"],
        unique=True,
    )
    op.create_table(
        "record_number_counters",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("next", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", name="pk_record_number_counters"),
    )
    op.create_table(
        "segment_snapshots",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("uid", sa.String(24), nullable=False),
        sa.Column("segment_uid", sa.String(24), nullable=False),
        sa.Column("taken", sa.DateTime(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("members", sa.LargeBinary(), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("user_uri", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "uid", name="pk_segment_snapshots"),
    )
    op.create_index(
        "ix_segment_snapshots_taken",
        "segment_snapshots",
        ["bucket", "segment_uid", "taken"],
        unique=False,
    )
    op.create_table(
        "snapshot_schedules",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("segment_uid", sa.String(24), nullable=False),
        sa.Column("schedule", sa.Text(), nullable=True),
        sa.Column("keep_last", sa.Integer(), nullable=True),
        sa.Column("keep_days", sa.Integer(), nullable=True),
        sa.Column("next_run", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("bucket", "segment_uid", name="pk_snapshot_schedules"),
    )


def downgrade() -> None:
    op.drop_table("snapshot_schedules")
    op.drop_index("ix_segment_snapshots_taken", table_name="segment_snapshots")
    op.drop_table("segment_snapshots")
    op.drop_table("record_number_counters")
    op.drop_index("uq_record_numbers_record", table_name="record_numbers")
    op.drop_table("record_numbers")
    op.drop_table("segment_versions")
