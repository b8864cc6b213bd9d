"""SQLite: every active record of a bucket and type in uid order, from an index alone: a
job freezing a whole segment (or one whose rules the column index cannot answer) reads its
record set from this index instead of from the records' rows, which hold their documents.
Not on PostgreSQL (see fold.db.models.Record).

Revision ID: 0014
Revises: 0012
"""

from alembic import op

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "CREATE INDEX ix_records_active ON records (bucket, resource_type, uid) "
        "WHERE record_state = 'active'"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_records_active", table_name="records")
