"""Exports: the journal of each export and its file, stored in chunks.

Revision ID: 0006
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "export_journals",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("uid", sa.String(24), nullable=False),
        sa.Column("segment_uid", sa.String(24), nullable=False),
        sa.Column("segment_name", sa.Text(), nullable=False),
        sa.Column("report_format", sa.String(16), nullable=False),
        sa.Column("fieldset", sa.Text(), nullable=True),
        sa.Column("gdpr_channel", sa.String(8), nullable=False),
        sa.Column("gdpr_bypass", sa.Boolean(), nullable=False),
        sa.Column("gdpr_bypass_reason", sa.Text(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("left_out_gdpr", sa.Integer(), nullable=False),
        sa.Column("left_out_no_address", sa.Integer(), nullable=False),
        sa.Column("bypassed", sa.Integer(), nullable=False),
        sa.Column("user_uri", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("finished", sa.DateTime(), nullable=True),
        sa.Column("file_name", sa.Text(), nullable=True),
        sa.Column("content_type", sa.String(100), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("bucket", "uid", name="pk_export_journals"),
    )
    op.create_index(
        "ix_export_journals_created", "export_journals", ["bucket", "created"], unique=False
    )
    op.create_table(
        "export_chunks",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("journal_uid", sa.String(24), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "journal_uid", "seq", name="pk_export_chunks"),
    )


def downgrade() -> None:
    op.drop_table("export_chunks")
    op.drop_index("ix_export_journals_created", table_name="export_journals")
    op.drop_table("export_journals")
