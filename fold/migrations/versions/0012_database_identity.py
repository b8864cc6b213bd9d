"""The database's identity: a random value the column index's files on disk are kept
under, so that they never meet another database (or this one made again).

Revision ID: 0012
Revises: 0011
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "database_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_database_identity"),
    )
    op.bulk_insert(table, [{"id": 1, "value": secrets.token_hex(16)}])


def downgrade() -> None:
    op.drop_table("database_identity")
