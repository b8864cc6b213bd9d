"""Related-record rules: the link fields indexed, so a segment of people with a rule on
their payments looks up each person's payments (and an organisation's people) by index.
The expressions are spelt as fold.db.jsonsql.JsonLink compiles them.

Revision ID: 0013
Revises: 0010
"""

from alembic import op

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None

LINKS = {"ix_records_link_contact": "contact", "ix_records_link_organisation": "organisation"}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name, field in LINKS.items():
        if dialect == "postgresql":
            expression = f"(data #>> '{{{field}}}')"
        else:
            expression = f"(CASE WHEN json_valid(data) THEN json_extract(data, '$.{field}') END)"
        op.execute(f"CREATE INDEX {name} ON records (bucket, resource_type, {expression})")


def downgrade() -> None:
    for name in LINKS:
        op.drop_index(name, table_name="records")
