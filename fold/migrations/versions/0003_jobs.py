"""Jobs and the frozen record sets they work through.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("uid", sa.String(24), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("params", JSONDoc, nullable=False),
        sa.Column("segment_uid", sa.String(24), nullable=True),
        sa.Column("undo_of", sa.String(24), nullable=True),
        sa.Column("user_uri", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("succeeded", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("errors", JSONDoc, nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("started", sa.DateTime(), nullable=True),
        sa.Column("finished", sa.DateTime(), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("worker", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("bucket", "uid", name="pk_jobs"),
    )
    op.create_index("ix_jobs_status", "jobs", ["bucket", "status"])
    op.create_table(
        "job_items",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("job_uid", sa.String(24), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("record_uid", sa.String(24), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("undo", JSONDoc, nullable=True),
        sa.PrimaryKeyConstraint("bucket", "job_uid", "seq", name="pk_job_items"),
    )
    op.create_index("ix_job_items_state", "job_items", ["bucket", "job_uid", "state", "seq"])


def downgrade() -> None:
    op.drop_table("job_items")
    op.drop_table("jobs")
