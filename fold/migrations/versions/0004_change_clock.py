"""The change clock: a counter per bucket that every writing transaction bumps once, and
the clock value on each record row it wrote, so the in-memory column index can read just
what changed since it last looked.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record_clocks",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", name="pk_record_clocks"),
    )
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("version", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_index(
        "ix_records_version", "records", ["bucket", "resource_type", "version"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_records_version", table_name="records")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("version")
    op.drop_table("record_clocks")
