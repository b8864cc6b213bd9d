"""Imports whose rows are made ready in the worker process store exactly what an import
made ready in-process stores: records, derived fields, audit diffs and errors."""

from __future__ import annotations

import json
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest
from sqlalchemy import select

from fold.buckets.service import ensure_bucket
from fold.db.engine import unit_of_work
from fold.db.models import AuditEntry, Record
from fold.fields.service import schema_for
from fold.records import prepare
from fold.records.bulk import import_rows, ndjson_rows
from tests.conftest import Database

ROWS = [
    {"email": "a@x.org", "first_name": "Ann", "tags": ["donor"], "address.locality": "Leeds"},
    {"email": "b@x.org", "last_name": "Bell", "geo": "53.8,-1.5"},
    {"email": "A@x.org", "last_name": "Again"},  # the same person as line 1: merged
    {"email": "c@x.org", "joined": "not a date"},  # refused
    {"uid": "0123456789abcdef01234567", "first_name": "Given"},
    {"uid": "bad"},
    {"first_name": "No email"},
    {"email": "existing@x.org", "tags": ["volunteer"]},  # updates a record already there
]


def stored(db: Database, bucket: str, parallel: bool, batch_size: int) -> dict[str, Any]:
    with unit_of_work(db.sessions) as session:
        ensure_bucket(session, bucket)
        schema = schema_for(session, bucket=bucket, resource_type="person")
        import_rows(
            session, bucket=bucket, user_uri="/t/", schema=schema,
            rows=ndjson_rows([json.dumps({"email": "existing@x.org", "first_name": "Old"})]),
            parallel=False,
        )  # fmt: skip
    with unit_of_work(db.sessions) as session:
        schema = schema_for(session, bucket=bucket, resource_type="person")
        result = import_rows(
            session, bucket=bucket, user_uri="/t/", schema=schema,
            rows=ndjson_rows(json.dumps(r) for r in ROWS), batch_size=batch_size,
            parallel=parallel,
        )  # fmt: skip
        records = session.scalars(
            select(Record).where(Record.bucket == bucket).order_by(Record.unique_key)
        ).all()
        diffs = session.scalars(
            select(AuditEntry.diff)
            .where(AuditEntry.bucket == bucket, AuditEntry.message == "Imported")
            .order_by(AuditEntry.record_uid, AuditEntry.uid)
        ).all()
        by_uid = {r.uid: r for r in records}

        def shown(r: Record) -> tuple[Any, ...]:
            # New uids differ between two imports; the uid a row named does not.
            uid = r.uid if r.uid == "0123456789abcdef01234567" else None
            display = r.display_value.replace(r.uid, "<uid>")
            return (uid, r.data, display, r.search_text, r.unique_key, r.record_state)

        return {
            "result": {k: v for k, v in result.as_dict().items()},
            "records": sorted(map(repr, (shown(r) for r in by_uid.values()))),
            "diffs": sorted(json.dumps(d, sort_keys=True) for d in diffs),
        }


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_worker_and_in_process_store_the_same(database: Database, batch_size: int) -> None:
    here = stored(database, f"prep-here-{batch_size}", False, batch_size)
    there = stored(database, f"prep-there-{batch_size}", True, batch_size)
    assert there == here
    assert here["result"]["created"] == 4 and here["result"]["failed"] == 2
    assert here["result"]["updated"] >= 1, here["result"]  # line 8 updates a record


class BrokenPool(Executor):
    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_exception(BrokenProcessPool("worker died"))
        return future


def test_a_broken_worker_leaves_the_import_whole(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prepare, "_executor", lambda: BrokenPool())
    got = stored(database, "prep-broken", True, 2)
    assert got == stored(database, "prep-reference", False, 2)
