"""PostgreSQL: the link indexes of migration 0013 hold only the records that have the link.
A person has no `contact` and seldom an `organisation`, yet every person written (imported,
patched, changed by a bulk job) wrote a NULL entry into each: two index writes of the nine
an update makes there (no update is HOT: these indexes read the document). A lookup of
related records compares the link with `=`, which the planner knows implies IS NOT NULL,
so it still uses them. SQLite keeps its whole indexes (its planner proves that of a
column, not of this expression).

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

LINKS = {"ix_records_link_contact": "contact", "ix_records_link_organisation": "organisation"}


def _rebuild(partial: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, field in LINKS.items():
        expression = f"(data #>> '{{{field}}}')"
        where = f" WHERE {expression} IS NOT NULL" if partial else ""
        op.execute(f"DROP INDEX {name}")
        op.execute(f"CREATE INDEX {name} ON records (bucket, resource_type, {expression}){where}")


def upgrade() -> None:
    _rebuild(partial=True)


def downgrade() -> None:
    _rebuild(partial=False)
