"""JSON path expressions: a statement built of them is compiled once and then taken from
the engine's cache (every count catches up its store with one), and a different path
never reuses another's SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.orm import Session

from fold.db.engine import unit_of_work
from fold.db.jsonsql import JsonLink, JsonNumber, JsonShape, JsonValue, Rounded
from fold.db.models import Record
from fold.records.clock import stamp
from fold.timefmt import utcnow
from tests.conftest import Database

BUCKET = "jsonsql-cache"


def _seed(session: Session) -> None:
    now = utcnow()
    row = {
        "bucket": BUCKET, "resource_type": "person", "uid": "a" * 24, "created": now,
        "last_updated": now, "record_state": "active", "display_value": "A", "search_text": "a",
        "unique_key": None,
        "data": {"name": {"first": "Ann", "last": "Lee"}, "amount": 12.345, "tags": ["x", "y"],
                 "owner": "/jsonsql-cache/person/bbbbbbbbbbbbbbbbbbbbbbbb/"},
    }  # fmt: skip
    session.execute(insert(Record), [{**row, "version": stamp(session, BUCKET)}])


def _read(connection: Connection, *columns: Any) -> tuple[tuple[Any, ...], bool]:
    result = connection.execute(select(*columns).where(Record.bucket == BUCKET))
    hit = result.context.cache_hit == connection.dialect.CACHE_HIT  # type: ignore[attr-defined]
    return tuple(result.one()), hit


def test_path_expressions_are_compiled_once_and_each_path_has_its_own_sql(
    database: Database,
) -> None:
    def columns(first: str) -> list[Any]:
        return [
            JsonValue(Record.data, first),
            JsonNumber(Record.data, "amount"),
            JsonLink(Record.data, "owner"),
            JsonShape(Record.data, "tags", "size", 2),
            Rounded(JsonNumber(Record.data, "amount"), 1),
        ]

    with unit_of_work(database.sessions) as session:
        session.execute(delete(Record).where(Record.bucket == BUCKET))
        _seed(session)
        connection = session.connection()
        first, _ = _read(connection, *columns("name.first"))
        again, hit = _read(connection, *columns("name.first"))
        other, other_hit = _read(connection, *columns("name.last"))
        session.execute(delete(Record).where(Record.bucket == BUCKET))
    assert first == again and hit, "the same statement compiled again"
    assert first[0] == '"Ann"' and other[0] == '"Lee"' and not other_hit
    assert first[1] == 12.345 and first[3] in (True, 1) and first[4] == 12.3
    assert first[2] == "/jsonsql-cache/person/bbbbbbbbbbbbbbbbbbbbbbbb/"
