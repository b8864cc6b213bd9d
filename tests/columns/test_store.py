"""A store's conversions of what the database reads give what one value at a time gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from fold.columns.store import micros, micros_array


def test_many_moments_convert_as_each_alone() -> None:
    naive = [datetime(2026, 1, 1, 12, 30, 15, 123456), datetime(1969, 12, 31, 23, 59, 59, 1)]
    aware = [datetime(2026, 6, 1, 9, 0, tzinfo=timezone(timedelta(hours=2))),
             datetime(2026, 6, 1, 7, 0, tzinfo=UTC)]  # fmt: skip
    sqlite_text = ["2026-01-01 12:30:15.123456", "2026-01-01 00:00:00"]
    for values in (naive, aware, sqlite_text, [naive[0], aware[0]], []):
        assert micros_array(values).tolist() == [micros(v) for v in values]
    # Two hours ahead of UTC at nine is seven in UTC.
    assert micros_array(aware).tolist()[0] == micros_array(aware).tolist()[1]
