"""The migrations build exactly the tables the models describe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fold.db.models import Base
from tests.conftest import Database

# SQLite's reflection skips expression indexes (the link indexes of migration 0013), and
# says so; alembic then leaves them out of the comparison on both sides.
EXPRESSION_INDEXES = "ignore:Skipped unsupported reflection of expression-based index"


def _on_this_database(dialect: str) -> Callable[..., bool]:
    """Leave out of the comparison what the models make on another database only
    (`ddl_if`), which alembic's comparison does not read."""

    def include(item: Any, _name: Any, _type: Any, reflected: bool, _other: Any) -> bool:
        only = getattr(item, "_ddl_if", None)
        return reflected or only is None or only.dialect in (None, dialect)

    return include


@pytest.mark.filterwarnings(EXPRESSION_INDEXES)
def test_migrations_match_models(database: Database) -> None:
    with database.engine.connect() as connection:
        include = _on_this_database(connection.dialect.name)
        context = MigrationContext.configure(connection, opts={"include_object": include})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


@pytest.mark.filterwarnings(EXPRESSION_INDEXES)
def test_bucket_leads_every_tenant_key(database: Database) -> None:
    from sqlalchemy import inspect

    inspector = inspect(database.engine)
    global_tables = {"api_keys", "users", "buckets", "alembic_version", "database_identity"}
    for table in inspector.get_table_names():
        if table in global_tables:
            continue
        assert inspector.get_pk_constraint(table)["constrained_columns"][0] == "bucket", table
        for index in inspector.get_indexes(table):
            assert index["column_names"][0] == "bucket", (table, index["name"])
