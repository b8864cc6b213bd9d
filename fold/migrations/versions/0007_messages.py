"""Messages: the per-bucket encrypted settings store and message templates.

Revision ID: 0007
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bucket_settings",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("section", sa.String(32), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("last_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "section", name="pk_bucket_settings"),
    )
    op.create_table(
        "message_templates",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("uid", sa.String(24), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("last_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "uid", name="pk_message_templates"),
    )
    op.create_index(
        "ix_message_templates_name", "message_templates", ["bucket", "name"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_message_templates_name", table_name="message_templates")
    op.drop_table("message_templates")
    op.drop_table("bucket_settings")
