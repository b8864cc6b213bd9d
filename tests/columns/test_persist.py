"""Stores saved beside the database open again (memory-mapped) after a restart, and
answer exactly what SQL answers: writes made while no process held them included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from fold.auth.policies import Caller
from fold.columns import index
from fold.columns.persist import Snapshots
from fold.db.engine import make_engine, make_sessionmaker, unit_of_work
from fold.paging import Paging
from fold.records import service as records
from tests.columns.test_index import by_index, by_sql, crowd, node_for, person, rule
from tests.conftest import Database, Tenant

__all__ = ["crowd"]  # the fixture, shared with test_index


@pytest.fixture
def on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(index.OPTIONS, "snapshots", Snapshots(tmp_path / "columns"))
    yield tmp_path / "columns"


def restart(db: Database) -> None:
    """What a restarted server starts from: no store in memory."""
    index.forget(db.engine)


def store_of(db: Database, bucket: str) -> index.Store:
    return index._stores[db.engine][(bucket, "person")]


def write_elsewhere(db: Database, bucket: str, body: dict[str, object]) -> str:
    """A write by another process, while this one holds nothing."""
    other = make_engine(db.url)
    try:
        with unit_of_work(make_sessionmaker(other)) as session:
            made = records.create(
                session,
                caller=Caller(bucket=bucket, policy="admin", user_uri="/test/"),
                resource_type="person",
                body=body,
            )
        return str(made["uid"])
    finally:
        other.dispose()


def opened(caplog: pytest.LogCaptureFixture) -> int:
    return sum("opened from disk" in r.getMessage() for r in caplog.records)


def test_a_restart_opens_the_saved_store(
    crowd: Tenant, database: Database, on_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="fold.columns")
    bucket = crowd.bucket
    donors = node_for(database, bucket, [rule("tags", "equals", "donor")])
    paging = Paging(2, 5)
    first = by_index(database, bucket, donors, sort="last_name", paging=paging)
    assert first == by_sql(database, bucket, donors, sort="last_name", paging=paging)
    assert list(on_disk.rglob("meta.json")), "the built store was saved"

    restart(database)
    write_elsewhere(database, bucket, person(77, tags=["donor"], last_name="Aardvark"))
    changed = by_sql(database, bucket, donors, sort="last_name", paging=paging)
    assert changed != first
    assert by_index(database, bucket, donors, sort="last_name", paging=paging) == changed
    # Opened from disk, not read again (the new record then made it grow in memory).
    assert opened(caplog) == 1
    assert ("last_name",) in store_of(database, bucket).ranks

    # A field no rule had used is built on the opened store, then saved with it.
    fresh = node_for(database, bucket, [rule("first_name", "starts_with", "P1")])
    assert by_index(database, bucket, fresh) == by_sql(database, bucket, fresh)
    restart(database)
    assert by_index(database, bucket, fresh) == by_sql(database, bucket, fresh)
    assert opened(caplog) == 2
    # Nothing written since: the store is the files, mapped.
    store = store_of(database, bucket)
    assert isinstance(store.active, np.memmap)
    assert isinstance(store.columns["first_name"].codes, np.memmap)


def test_never_another_databases_files(
    crowd: Tenant, database: Database, on_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="fold.columns")
    bucket = crowd.bucket
    donors = node_for(database, bucket, [rule("tags", "equals", "donor")])
    by_index(database, bucket, donors)
    restart(database)
    # The same database made again (a new identity): what was saved is not its own.
    with unit_of_work(database.sessions) as session:
        session.execute(text("UPDATE database_identity SET value = 'another' WHERE id = 1"))
    index._identities.pop(database.engine, None)
    try:
        assert by_index(database, bucket, donors) == by_sql(database, bucket, donors)
        assert opened(caplog) == 0
    finally:
        restart(database)
        index._identities.pop(database.engine, None)


def test_a_clock_behind_the_snapshot_is_not_opened(
    crowd: Tenant, database: Database, on_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="fold.columns")
    bucket = crowd.bucket
    donors = node_for(database, bucket, [rule("tags", "equals", "donor")])
    by_index(database, bucket, donors)
    restart(database)
    # As if the database had been restored from before the snapshot was taken.
    for meta in on_disk.rglob("meta.json"):
        saved = json.loads(meta.read_text())
        saved["seen"] += 1_000
        meta.write_text(json.dumps(saved))
    assert by_index(database, bucket, donors) == by_sql(database, bucket, donors)
    assert opened(caplog) == 0
