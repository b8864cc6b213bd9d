"""Xero: invoice templates, per bucket.

Revision ID: 0011
Revises: 0013 (0010 when written; re-chained after main added 0013)
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0013"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "invoice_templates",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("uid", sa.String(24), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("line_items", JSONDoc, nullable=False),
        sa.Column("due", JSONDoc, nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("line_amount_types", sa.String(16), nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=True),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("last_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "uid", name="pk_invoice_templates"),
    )
    op.create_index(
        "ix_invoice_templates_name", "invoice_templates", ["bucket", "name"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_invoice_templates_name", table_name="invoice_templates")
    op.drop_table("invoice_templates")
