"""After a restart, a rule on a field no rule has used is answered from the catalogue made
with the store's first read: woken, not read from every document, and exactly what SQL
answers — writes made meanwhile, by any process, included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fold.columns import catalogue
from fold.columns.index import ColumnIndex, Options
from fold.columns.persist import Snapshots
from tests.columns.test_index import by_index, by_sql, crowd, node_for, person, rule
from tests.columns.test_persist import store_of, write_elsewhere
from tests.conftest import Database, Tenant

__all__ = ["crowd"]  # the fixture, shared with test_index


def server(directory: Path) -> ColumnIndex:
    return ColumnIndex(Options(directory=directory, catalogue="inline"))


def read_from_documents(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The columns built by reading every document (not woken)."""
    return [r.getMessage() for r in caplog.records if " built in " in r.getMessage()]


def woken(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if " woken in " in r.getMessage()]


def exact(db: Database, bucket: str, rules: list[dict[str, Any]], columns: ColumnIndex) -> None:
    node = node_for(db, bucket, rules)
    assert by_index(db, bucket, node, columns=columns) == by_sql(db, bucket, node), rules


def test_a_field_no_rule_used_wakes_from_the_catalogue(
    crowd: Tenant, database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="fold.columns")
    bucket, on_disk = crowd.bucket, tmp_path / "columns"
    # One record with values of every kind, nested: made before the first read.
    rich = write_elsewhere(
        database,
        bucket,
        person(90, score=7, ratio=0.5, member=True, address={"city": "Leeds", "geo": {"x": 1}}),
    )
    exact(database, bucket, [rule("tags", "equals", "donor")], server(on_disk))
    saved = next(on_disk.rglob("meta.json")).read_text()
    assert '"catalogue"' in saved

    # Meanwhile, other processes write: a new value, a lost value, a path no one had.
    crowd.admin.patch(f"/person/{rich}/", json={"score": None, "address": {"city": "York"}})
    write_elsewhere(database, bucket, person(91, score=3, nickname="Dot"))
    caplog.clear()

    restarted = server(on_disk)
    for rules in (
        [rule("first_name", "starts_with", "P1")],
        [rule("email", "ends_with", "@example.org")],
        [rule("score", "greater_than", 2)],
        [rule("score", "not_equal_to", 3)],
        [rule("ratio", "equals", 0.5)],
        [rule("member", "equals", True)],
        [rule("address.city", "equals", "York")],
        [rule("address.city", "equals", "Leeds")],
        [rule("address.geo.x", "equals", 1)],
        [rule("nickname", "equals", "Dot")],
        [rule("never_anywhere", "equals", "x")],
        [rule("last_name", "equals", "Brown")],
    ):
        exact(database, bucket, rules, restarted)
    assert woken(caplog)
    assert read_from_documents(caplog) == []
    # Kept in step from then on like any column.
    crowd.admin.patch(f"/person/{rich}/", json={"nickname": "Dot"})
    exact(database, bucket, [rule("nickname", "equals", "Dot")], restarted)


def test_paths_the_catalogue_cannot_speak_for_are_read(
    crowd: Tenant, database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="fold.columns")
    bucket, on_disk = crowd.bucket, tmp_path / "columns"
    write_elsewhere(database, bucket, person(92, address={"city": "Hull"}))
    exact(database, bucket, [rule("tags", "equals", "donor")], server(on_disk))
    caplog.clear()
    restarted = server(on_disk)
    # A path that held an object: the catalogue keeps no objects.
    exact(database, bucket, [rule("address", "not_equal_to", "x")], restarted)
    assert any("address of" in m for m in read_from_documents(caplog))
    # Nor does it speak for an all-digit step (an array index on PostgreSQL), which no
    # rule can name today.
    dormant = store_of(restarted, database, bucket).dormant
    assert dormant is not None
    assert not dormant.covers("tags.0") and not dormant.covers("address")
    assert dormant.covers("address.city") and dormant.covers("no_one_has_this")


def test_a_catalogue_mostly_written_over_is_not_woken(
    crowd: Tenant,
    database: Database,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level("INFO", logger="fold.columns")
    bucket, on_disk = crowd.bucket, tmp_path / "columns"
    exact(database, bucket, [rule("tags", "equals", "donor")], server(on_disk))
    monkeypatch.setattr(catalogue, "STALE_SHARE", 0.01)
    write_elsewhere(database, bucket, person(93, email="q@example.org"))
    caplog.clear()
    exact(database, bucket, [rule("email", "starts_with", "q")], server(on_disk))
    assert woken(caplog) == [] and read_from_documents(caplog)


def test_the_catalogue_outlives_the_snapshot_it_came_with(
    crowd: Tenant, database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Saved again (and the first snapshot pruned), the store keeps its catalogue."""
    caplog.set_level("INFO", logger="fold.columns")
    bucket, on_disk = crowd.bucket, tmp_path / "columns"
    write_elsewhere(database, bucket, person(94, a={"x": 1}, b={"y": 2}, c={"z": 3}))
    exact(database, bucket, [rule("tags", "equals", "donor")], server(on_disk))
    for path in ("a", "b", "c"):
        # Each start reads one more column from every document (an object's path: not in
        # the catalogue), and saves the store again.
        columns = server(on_disk)
        exact(database, bucket, [rule(path, "not_equal_to", "zz")], columns)
        assert store_of(columns, database, bucket).dormant is not None
    assert len(list(on_disk.rglob("meta.json"))) == 2  # the first snapshots are gone
    caplog.clear()
    last = server(on_disk)
    exact(database, bucket, [rule("email", "starts_with", "p1")], last)
    assert woken(caplog) and read_from_documents(caplog) == []


def test_a_server_makes_the_catalogue_beside_its_requests(
    crowd: Tenant, database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What servers do: the first read answers at once, the catalogue follows in a thread
    of its own and is saved with the store; the next start wakes from it."""
    caplog.set_level("INFO", logger="fold.columns")
    bucket, on_disk = crowd.bucket, tmp_path / "columns"
    first = ColumnIndex(Options(directory=on_disk, catalogue_at_least=0))
    assert first.cataloguer.mode == "background"
    exact(database, bucket, [rule("tags", "equals", "donor")], first)
    assert first.cataloguer.wait(timeout=60)
    assert store_of(first, database, bucket).dormant is not None
    write_elsewhere(database, bucket, person(95, email="late@example.org"))
    caplog.clear()
    restarted = ColumnIndex(Options(directory=on_disk, catalogue_at_least=0))
    exact(database, bucket, [rule("email", "starts_with", "late")], restarted)
    assert woken(caplog) and read_from_documents(caplog) == []
    assert restarted.cataloguer.wait(timeout=60)


def test_a_server_makes_no_catalogue_for_a_small_store(
    crowd: Tenant, database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Below `catalogue_at_least` rows a server makes no catalogue (a path no rule has used
    is read from SQL, quickly at that size): many small tenants' stores would otherwise
    each cost a read of every document beside the requests. Counts stay exact."""
    caplog.set_level("INFO", logger="fold.columns")
    bucket, on_disk = crowd.bucket, tmp_path / "columns"
    small = ColumnIndex(Options(directory=on_disk, catalogue_at_least=10**9))
    exact(database, bucket, [rule("tags", "equals", "donor")], small)
    assert small.cataloguer.wait(timeout=60)
    assert store_of(small, database, bucket).dormant is None
    assert Snapshots(on_disk).uncatalogued([bucket]) >= 1
    assert Snapshots(on_disk).uncatalogued([bucket], at_least=10**9) == 0
    exact(database, bucket, [rule("email", "starts_with", "p1")], small)


def test_one_process_makes_a_catalogue_at_a_time(
    crowd: Tenant, database: Database, tmp_path: Path
) -> None:
    columns = ColumnIndex(Options(directory=tmp_path / "columns", catalogue="off"))
    exact(database, crowd.bucket, [rule("tags", "equals", "donor")], columns)
    store = store_of(columns, database, crowd.bucket)
    assert columns.snapshots is not None and store.dormant is None
    with (
        columns.snapshots.claim("db", store) as mine,
        columns.snapshots.claim("db", store) as other,
    ):
        assert mine and not other
    with columns.snapshots.claim("db", store) as again:
        assert again


def test_a_catalogue_whose_snapshot_was_pruned_elsewhere_still_wakes(
    crowd: Tenant, database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process saved the store twice since this one opened it: the snapshot it
    opened is gone, and its catalogue is found in the current one."""
    caplog.set_level("INFO", logger="fold.columns")
    bucket, on_disk = crowd.bucket, tmp_path / "columns"
    write_elsewhere(database, bucket, person(96, a={"x": 1}, b={"y": 2}))
    exact(database, bucket, [rule("tags", "equals", "donor")], server(on_disk))
    reader = server(on_disk)
    exact(database, bucket, [rule("tags", "equals", "donor")], reader)
    opened_from = store_of(reader, database, bucket).dormant
    assert opened_from is not None and opened_from.source is not None
    for path in ("a", "b"):
        exact(database, bucket, [rule(path, "not_equal_to", "zz")], server(on_disk))
    assert not opened_from.source.exists()
    caplog.clear()
    exact(database, bucket, [rule("email", "starts_with", "p1")], reader)
    assert woken(caplog) and read_from_documents(caplog) == []


def test_a_save_from_a_process_opened_before_the_catalogue_keeps_it(
    crowd: Tenant, database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A process that opened the store before its catalogue was made saves it again: the
    catalogue made elsewhere stays with the store (and its rows written since are read
    again when woken)."""
    caplog.set_level("INFO", logger="fold.columns")
    bucket, on_disk = crowd.bucket, tmp_path / "columns"
    write_elsewhere(database, bucket, person(97, a={"x": 1}))
    early = ColumnIndex(Options(directory=on_disk, catalogue="off"))
    exact(database, bucket, [rule("tags", "equals", "donor")], early)
    assert store_of(early, database, bucket).dormant is None
    exact(database, bucket, [rule("tags", "equals", "donor")], server(on_disk))
    # Written after the catalogue: only waking reads it.
    write_elsewhere(database, bucket, person(98, email="after@example.org"))
    # An object's path: read from every document, and the store saved again.
    exact(database, bucket, [rule("a", "not_equal_to", "zz")], early)
    assert store_of(early, database, bucket).dormant is not None
    pointer = next(on_disk.rglob("current"))
    assert '"catalogue"' in (pointer.parent / pointer.read_text() / "meta.json").read_text()
    caplog.clear()
    restarted = server(on_disk)
    exact(database, bucket, [rule("email", "starts_with", "after")], restarted)
    assert woken(caplog) and read_from_documents(caplog) == []
