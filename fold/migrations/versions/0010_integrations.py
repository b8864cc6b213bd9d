"""Integrations: jobs found by segment and action (a segment's last Mailchimp sync).

Revision ID: 0010
Revises: 0007
"""

from alembic import op

revision = "0010"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_segment", "jobs", ["bucket", "segment_uid", "action", "created"])


def downgrade() -> None:
    op.drop_index("ix_jobs_segment", table_name="jobs")
