"""Stored NaN and Infinity: SQLite took them as JSON text that its own JSON functions then
refused, so one such value broke every query over its table; each becomes null.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from fold.db.repair import scrub_not_finite

revision = "0005"
down_revision = "0006"
branch_labels = None
depends_on = None

JSON_COLUMNS = [
    ("records", "data", ["bucket", "resource_type", "uid"]),
    ("audit_entries", "diff", ["bucket", "uid"]),
]


def upgrade() -> None:
    connection = op.get_bind()
    for table, column, keys in JSON_COLUMNS:
        scrub_not_finite(connection, table, column, keys)


def downgrade() -> None:
    # The values were unreadable; there is nothing to put back.
    pass
