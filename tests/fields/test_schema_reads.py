"""A type's schema is read once per transaction, and a field added in it is seen at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from fold.buckets.service import ensure_bucket
from fold.db.engine import unit_of_work
from fold.fields.service import add_custom_field, schema_for
from tests.conftest import Database


def test_read_once_per_transaction_and_a_new_field_seen(database: Database) -> None:
    bucket = f"schema-{database.name[:2]}-reads"
    statements: list[str] = []

    def seen(*args: Any) -> None:
        if "custom_fields" in str(args[2]):
            statements.append(str(args[2]))

    event.listen(database.engine, "before_cursor_execute", seen)
    try:
        with unit_of_work(database.sessions) as session:
            ensure_bucket(session, bucket)
            first = schema_for(session, bucket=bucket, resource_type="person")
            assert schema_for(session, bucket=bucket, resource_type="person") is first
            assert len(statements) == 1
            add_custom_field(
                session, bucket=bucket, resource_type="person",
                body={"field": "score", "type": "number"},
            )  # fmt: skip
            assert "score" in schema_for(session, bucket=bucket, resource_type="person").fields
        with unit_of_work(database.sessions) as session:  # a new transaction reads again
            assert "score" in schema_for(session, bucket=bucket, resource_type="person").fields
    finally:
        event.remove(database.engine, "before_cursor_execute", seen)
