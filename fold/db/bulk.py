"""Writing many rows at once, straight to the driver: COPY on PostgreSQL, executemany on
SQLite. The bulk paths (import, demo, audit of bulk writes) use it; the per-row work that
SQLAlchemy would do for each parameter is done here once, in the cheapest form."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Table, text
from sqlalchemy.orm import Session

SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's own storage format for SQLite
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _converters(table: Table, columns: list[str], dialect: str) -> list[Any]:
    out: list[Any] = []
    for name in columns:
        column_type = table.c[name].type
        if isinstance(column_type, JSON):
            out.append(_dumps)
        elif isinstance(column_type, DateTime) and dialect == "sqlite":
            out.append(lambda v: v.strftime(SQLITE_DATETIME) if isinstance(v, datetime) else v)
        else:
            out.append(None)
    return out


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (all with the same keys) in the session's transaction."""
    if not rows:
        return
    if table.name == "records":
        # Every record write carries its transaction's change clock (fold.columns.clock).
        from fold.columns.clock import stamp

        rows = [{**row, "version": stamp(session, row["bucket"])} for row in rows]
    columns = list(rows[0])
    connection = session.connection()
    dialect = connection.dialect.name
    convert = _converters(table, columns, dialect)
    tuples = [
        tuple(
            f(row[c]) if f is not None and row[c] is not None else row[c]
            for c, f in zip(columns, convert, strict=True)
        )
        for row in rows
    ]
    raw: Any = connection.connection.dbapi_connection
    names = ", ".join(columns)
    if dialect == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for values in tuples:
                copy.write_row(values)
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
