"""Bulk writes carry what their table requires: a record row without its change clock is
refused before anything is written."""

from __future__ import annotations

import pytest
from sqlalchemy import Table, func, select

from fold.db.bulk import insert_rows
from fold.db.engine import unit_of_work
from fold.db.models import Record
from fold.records.clock import stamp
from fold.timefmt import utcnow
from tests.conftest import Database

RECORDS: Table = Record.__table__  # type: ignore[assignment]


def row(bucket: str, uid: str) -> dict[str, object]:
    now = utcnow()
    return {
        "bucket": bucket, "resource_type": "person", "uid": uid, "data": {"first_name": "A"},
        "created": now, "last_updated": now, "record_state": "active",
        "display_value": "A", "search_text": "a", "unique_key": None,
    }  # fmt: skip


def held(database: Database, bucket: str) -> int:
    with unit_of_work(database.sessions) as session:
        return session.scalar(select(func.count()).where(Record.bucket == bucket)) or 0


class TestInsertRows:
    def test_a_record_row_without_its_clock_is_refused(self, database: Database) -> None:
        with (
            pytest.raises(ValueError, match="must carry version"),
            unit_of_work(database.sessions) as session,
        ):
            insert_rows(session, RECORDS, [row("bulk-refused", "0" * 24)])
        assert held(database, "bulk-refused") == 0

    def test_stamped_rows_are_written_with_their_clock(self, database: Database) -> None:
        with unit_of_work(database.sessions) as session:
            version = stamp(session, "bulk-stamped")
            rows = [{**row("bulk-stamped", f"{i:024d}"), "version": version} for i in range(3)]
            insert_rows(session, RECORDS, rows)
        with unit_of_work(database.sessions) as session:
            versions = session.scalars(
                select(Record.version).where(Record.bucket == "bulk-stamped")
            ).all()
        assert versions == [version] * 3
