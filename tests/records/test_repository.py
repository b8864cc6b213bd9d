"""Record queries that pick a partial index of active records keep it in a plan made
before the values are known (PostgreSQL's generic plan of a statement psycopg prepared):
an import's unique-key look-up read every record of the type without it."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from fold.db.engine import unit_of_work
from fold.db.jsonsql import one_of
from fold.db.models import Record
from fold.records import repository
from tests.conftest import Database


def test_unique_key_lookup_uses_the_unique_index_in_a_generic_plan(database: Database) -> None:
    if database.name != "postgresql":
        pytest.skip("generic plans are PostgreSQL's")
    lookup = select(Record.uid).where(
        Record.bucket == "b",
        Record.resource_type == "person",
        repository.ACTIVE,
        one_of(Record.unique_key, ["a@example.test", "b@example.test"], "postgresql"),
    )
    with unit_of_work(database.sessions) as session:
        session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        session.execute(text("SET LOCAL enable_seqscan = off"))
        compiled = lookup.compile(session.get_bind())
        sql = str(compiled).replace("%(", "$").replace(")s", "")
        names = list(compiled.params)
        for i, name in enumerate(names, start=1):
            sql = sql.replace(f"${name}", f"${i}")
        session.execute(text(f"PREPARE lookup AS {sql}"))
        plan = "\n".join(
            row[0]
            for row in session.execute(
                text("EXPLAIN EXECUTE lookup(" + ", ".join(["NULL"] * len(names)) + ")")
            )
        )
        session.execute(text("DEALLOCATE lookup"))
    assert "uq_records_unique_key" in plan, plan


def test_unique_key_lookup_finds_active_records_only(database: Database) -> None:
    with unit_of_work(database.sessions) as session:
        found = repository.active_by_unique_keys(
            session, bucket="nobody", resource_type="person", keys=["x@example.test"]
        )
    assert found == {}
