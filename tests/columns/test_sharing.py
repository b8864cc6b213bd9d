"""Processes on the same bucket share the snapshot they map instead of holding copies of
it: rows written after it go into its spare rows, and a process that outgrew them maps
them again from the snapshot another process saved (or saves one itself) — each answering
exactly what SQL answers throughout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fold.columns import index, persist
from fold.columns.index import ColumnIndex, Options
from tests.columns.test_index import by_index, by_sql, crowd, node_for, person, rule
from tests.columns.test_persist import store_of, write_elsewhere
from tests.conftest import Database, Tenant

__all__ = ["crowd"]  # the fixture, shared with test_index


def server(directory: Path) -> ColumnIndex:
    return ColumnIndex(Options(directory=directory, catalogue="off"))


def exact(db: Database, bucket: str, columns: ColumnIndex, *, once: bool = False) -> None:
    """Counts and a page from the index as SQL has them (`once`: one use of the index)."""
    asked = ([rule("tags", "equals", "donor")], [rule("last_name", "equals", "Quux")])
    for rules in asked[:1] if once else asked:
        node = node_for(db, bucket, rules)
        assert by_index(db, bucket, node, columns=columns) == by_sql(db, bucket, node), rules


def current(on_disk: Path) -> str:
    return next(on_disk.rglob("current")).read_text()


def test_rows_written_after_the_snapshot_go_into_its_spare_rows(
    crowd: Tenant, database: Database, tmp_path: Path
) -> None:
    bucket, on_disk = crowd.bucket, tmp_path / "columns"
    exact(database, bucket, server(on_disk))
    opened = server(on_disk)
    exact(database, bucket, opened)
    store = store_of(opened, database, bucket)
    mapped = store.columns["tags"].codes.base
    write_elsewhere(database, bucket, person(80, tags=["donor"], last_name="Quux"))
    exact(database, bucket, opened)
    assert store.n > len(mapped) - persist.SPARE  # it grew ...
    assert store.columns["tags"].codes.base is mapped  # ... in the mapping, not a copy
    assert isinstance(store.active.base, np.memmap) and store.n <= store.room


@pytest.fixture
def no_room(monkeypatch: pytest.MonkeyPatch) -> None:
    """Snapshots with a single spare row, and stores that look to share again at every use."""
    monkeypatch.setattr(persist, "SPARE", 1)
    monkeypatch.setattr(persist, "SPARE_SHARE", 10**9)
    monkeypatch.setattr(index, "SHARE_EVERY", 0.0)


@pytest.mark.usefixtures("no_room")
def test_a_process_that_outgrew_its_snapshot_maps_the_one_another_saved(
    crowd: Tenant, database: Database, tmp_path: Path
) -> None:
    bucket, on_disk = crowd.bucket, tmp_path / "columns"
    exact(database, bucket, server(on_disk))
    first, second = server(on_disk), server(on_disk)
    exact(database, bucket, first)
    for k in range(3):
        write_elsewhere(database, bucket, person(81 + k, tags=["donor"], last_name="Quux"))
    exact(database, bucket, first, once=True)
    mine = store_of(first, database, bucket)
    assert mine.n > mine.room  # past the spare rows: its own copy
    exact(database, bucket, first)  # saved by it, and mapped from what it saved
    assert mine.n <= mine.room and mine.snapshot == current(on_disk)

    exact(database, bucket, second)  # opens what the first saved
    theirs = store_of(second, database, bucket)
    assert theirs.snapshot == mine.snapshot
    for k in range(3):
        write_elsewhere(database, bucket, person(84 + k, tags=["donor"], last_name="Quux"))
    exact(database, bucket, first, once=True)
    exact(database, bucket, second, once=True)
    assert mine.n > mine.room and theirs.n > theirs.room
    exact(database, bucket, second, once=True)  # saves
    saved = current(on_disk)
    assert theirs.snapshot == saved != mine.snapshot
    generation = mine.generation
    exact(database, bucket, first, once=True)  # maps what the second saved, saves none
    assert mine.snapshot == saved == current(on_disk) and mine.generation == generation + 1
    assert mine.n <= mine.room


@pytest.mark.usefixtures("no_room")
def test_a_store_that_cannot_be_shared_stays_its_own_and_exact(
    crowd: Tenant, database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, on_disk = crowd.bucket, tmp_path / "columns"
    exact(database, bucket, server(on_disk))
    opened = server(on_disk)
    exact(database, bucket, opened)

    def unwritable(*_: object) -> None:
        raise PermissionError("read-only")

    monkeypatch.setattr(persist.Snapshots, "saving", unwritable)
    for k in range(3):
        write_elsewhere(database, bucket, person(87 + k, tags=["donor"], last_name="Quux"))
    exact(database, bucket, opened)
    exact(database, bucket, opened)
    store = store_of(opened, database, bucket)
    assert store.n > store.room
