"""Writing many rows at once, straight to the driver: COPY on PostgreSQL, executemany on
SQLite. The bulk paths (import, demo, audit of bulk writes) use it; the per-row work that
SQLAlchemy would do for each parameter is done here once, in the cheapest form."""

from __future__ import annotations

import gc
import json
import operator
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Table, text
from sqlalchemy.orm import Session

SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's own storage format for SQLite
FEW_ROWS = 8  # on PostgreSQL, fewer rows than this are inserted, more copied
dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


class Encoded(str):
    """A JSON column's value already encoded (by `dumps`), written as it is."""


def _json_value(value: Any) -> str:
    return value if isinstance(value, Encoded) else dumps(value)


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Bulk work makes many objects and no reference cycles: the cyclic collector would
    only walk them (and everything else in the process) again and again."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _sqlite_datetime() -> Any:
    # A batch shares one or two datetimes (its "now"): format each once.
    seen: dict[datetime, str] = {}

    def convert(value: Any) -> Any:
        if not isinstance(value, datetime):
            return value
        text = seen.get(value)
        if text is None:
            text = seen[value] = value.strftime(SQLITE_DATETIME)
        return text

    return convert


def _converters(table: Table, columns: list[str], dialect: str) -> list[tuple[int, Any]]:
    """(position, function) for each column whose values need converting."""
    out: list[tuple[int, Any]] = []
    for position, name in enumerate(columns):
        column_type = table.c[name].type
        if isinstance(column_type, JSON):
            out.append((position, _json_value))
        elif isinstance(column_type, DateTime) and dialect == "sqlite":
            out.append((position, _sqlite_datetime()))
    return out


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (all with the same keys) in the session's transaction."""
    if not rows:
        return
    columns = list(rows[0])
    # A table can name columns every bulk-written row must carry (the records' change
    # clock): the caller fills them, this refuses rows without them.
    missing = [name for name in table.info.get("bulk_requires", ()) if name not in columns]
    if missing:
        raise ValueError(f"rows for {table.name} must carry {', '.join(missing)}")
    connection = session.connection()
    dialect = connection.dialect.name
    convert = _converters(table, columns, dialect)
    take = operator.itemgetter(*columns)
    tuples: list[list[Any]] = []
    for row in rows:
        values = list(take(row)) if len(columns) > 1 else [take(row)]
        for position, function in convert:
            if values[position] is not None:
                values[position] = function(values[position])
        tuples.append(values)
    raw: Any = connection.connection.dbapi_connection
    names = ", ".join(columns)
    if dialect == "postgresql" and len(tuples) >= FEW_ROWS:
        with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for values in tuples:
                copy.write_row(values)
        return
    if dialect == "postgresql":
        # A few rows (one write's audit entry): one INSERT, where COPY takes two round trips.
        marks = ", ".join(
            "%s::jsonb" if isinstance(table.c[name].type, JSON) else "%s" for name in columns
        )
        with raw.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", tuples)
        return
    marks = ", ".join("?" for _ in columns)
    cursor = raw.cursor()
    try:
        cursor.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", tuples)
    finally:
        cursor.close()


def analyze(session: Session, *tables: str) -> None:
    """Refresh PostgreSQL's statistics after a bulk load. Without them its planner can tie
    a table's primary key with another index that shares its first columns, and pick the
    one that scans every record of the type for each by-key lookup. SQLite needs nothing."""
    if session.get_bind().dialect.name == "postgresql":
        for table in tables:
            session.execute(text(f"ANALYZE {table}"))
