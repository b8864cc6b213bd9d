"""Stores saved beside the database open again (memory-mapped) after a restart, and
answer exactly what SQL answers: writes made while no process held them included."""

from __future__ import annotations

import json
import mmap
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from fold.auth.policies import Caller
from fold.columns import persist, vector
from fold.columns.index import ColumnIndex, Options
from fold.columns.index import lag as columns_lag
from fold.columns.persist import Snapshots, read_small
from fold.columns.rowdata import SearchText, Uids
from fold.columns.store import Column, Store, json_key, kind_of
from fold.columns.vector import entry_hits
from fold.db.engine import make_engine, unit_of_work
from fold.paging import Paging
from fold.records import service as records
from fold.records.clock import NEVER
from fold.rules.ops import TESTS
from fold.segments.index_or_sql import selected_keys
from fold.segments.members import selection, stream_keys
from tests.columns.test_index import by_index, by_sql, crowd, node_for, person, rule
from tests.conftest import Database, Tenant, sessions_for

__all__ = ["crowd"]  # the fixture, shared with test_index


@pytest.fixture
def on_disk(tmp_path: Path) -> Path:
    return tmp_path / "columns"


def server(directory: Path) -> ColumnIndex:
    """A server process's column index, starting with nothing in memory (its stores'
    catalogues made at once, not beside the test: tests/columns/test_catalogue.py)."""
    return ColumnIndex(Options(directory=directory, catalogue="inline"))


def store_of(columns: ColumnIndex, db: Database, bucket: str) -> Store:
    found = columns._stores[db.engine][(bucket, "person")]
    return found


def write_elsewhere(db: Database, bucket: str, body: dict[str, object]) -> str:
    """A write by another process, while this one holds nothing."""
    other = make_engine(db.url)
    try:
        with unit_of_work(sessions_for(other)) as session:
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


@pytest.mark.parametrize("packed", [False, True], ids=["mapped", "packed"])
def test_a_restart_opens_the_saved_store(
    crowd: Tenant,
    database: Database,
    on_disk: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    packed: bool,
) -> None:
    """Mapped: every array a file of its own (as a large store's are). Packed: every array
    in the snapshot's one pack file, read whole (as a small tenant's are)."""
    caplog.set_level("INFO", logger="fold.columns")
    if packed:
        monkeypatch.setattr(persist, "MAP_AT_LEAST", 1 << 20)
    bucket = crowd.bucket
    donors = node_for(database, bucket, [rule("tags", "equals", "donor")])
    paging = Paging(2, 5)
    first = by_index(
        database, bucket, donors, sort="last_name", paging=paging, columns=server(on_disk)
    )
    assert first == by_sql(database, bucket, donors, sort="last_name", paging=paging)
    assert list(on_disk.rglob("meta.json")), "the built store was saved"

    write_elsewhere(database, bucket, person(77, tags=["donor"], last_name="Aardvark"))
    changed = by_sql(database, bucket, donors, sort="last_name", paging=paging)
    assert changed != first
    restarted = server(on_disk)
    assert (
        by_index(database, bucket, donors, sort="last_name", paging=paging, columns=restarted)
        == changed
    )
    # Opened from disk, not read again (the new record then made it grow in memory).
    assert opened(caplog) == 1
    assert ("last_name",) in store_of(restarted, database, bucket).ranks

    # A field no rule had used is built on the opened store, then saved with it.
    fresh = node_for(database, bucket, [rule("first_name", "starts_with", "P1")])
    assert by_index(database, bucket, fresh, columns=restarted) == by_sql(database, bucket, fresh)
    again = server(on_disk)
    assert by_index(database, bucket, fresh, columns=again) == by_sql(database, bucket, fresh)
    assert opened(caplog) == 2
    # Nothing written since: the store is the files, mapped, or the pack, read.
    store = store_of(again, database, bucket)
    assert mapped_arrays(store) == (0 if packed else 1 + len(store.columns))
    snapshot = next(p.parent for p in on_disk.rglob("meta.json") if p.parent.name == store.snapshot)
    # (The catalogue's columns, "d…", are files of their own either way: later snapshots
    # link them.)
    own = sorted(p.name for p in snapshot.iterdir() if not p.name.startswith("d"))
    if packed:
        assert own == ["meta.json", persist.PACK]
    else:
        assert persist.PACK not in {p.name for p in snapshot.iterdir()}

    # Writes applied to the opened store (a new record, a new tag, a new search text) and
    # saved with the next build, then opened by a third start: uids, search text and the
    # columns' entries all as the database has them.
    made = write_elsewhere(database, bucket, person(78, tags=["brand-new"], last_name="Quux"))
    first_uid = by_sql(database, bucket, donors)[1][0]
    crowd.admin.patch(f"/person/{first_uid}/", json={"first_name": "Zebedee"})
    asked = [
        (node_for(database, bucket, [rule("tags", "equals", "brand-new")]), None),
        (node_for(database, bucket, [rule("display_value", "starts_with", "Zeb")]), None),
        (donors, "zebedee"),
        (donors, "quux"),
        (fresh, None),
    ]
    for node, q in asked:
        assert by_index(database, bucket, node, q=q, columns=again) == by_sql(
            database, bucket, node, q=q
        )
    third = server(on_disk)
    for node, q in asked:
        assert by_index(database, bucket, node, q=q, columns=third) == by_sql(
            database, bucket, node, q=q
        )
    assert made in by_index(database, bucket, asked[0][0], columns=third)[1]
    assert opened(caplog) == 3
    # Every snapshot the opened stores came from pruned (by another process's saves, say):
    # what they read or mapped is still theirs, and writes still reach them.
    for snapshot_dir in [p.parent for p in on_disk.rglob("meta.json")]:
        shutil.rmtree(snapshot_dir)
    crowd.admin.patch(f"/person/{first_uid}/", json={"tags": ["brand-new"]})
    for columns in (again, third):
        for node, q in asked:
            assert by_index(database, bucket, node, q=q, columns=columns) == by_sql(
                database, bucket, node, q=q
            )


def test_never_another_databases_files(
    crowd: Tenant, database: Database, on_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="fold.columns")
    bucket = crowd.bucket
    donors = node_for(database, bucket, [rule("tags", "equals", "donor")])
    by_index(database, bucket, donors, columns=server(on_disk))
    # The same database made again (a new identity): what was saved is not its own.
    with unit_of_work(database.sessions) as session:
        was = session.scalar(text("SELECT value FROM database_identity WHERE id = 1"))
        session.execute(text("UPDATE database_identity SET value = 'another' WHERE id = 1"))
    try:
        answer = by_index(database, bucket, donors, columns=server(on_disk))
        assert answer == by_sql(database, bucket, donors)
        assert opened(caplog) == 0
    finally:
        with unit_of_work(database.sessions) as session:
            session.execute(
                text("UPDATE database_identity SET value = :v WHERE id = 1"), {"v": was}
            )


def test_a_clock_behind_the_snapshot_is_not_opened(
    crowd: Tenant, database: Database, on_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="fold.columns")
    bucket = crowd.bucket
    donors = node_for(database, bucket, [rule("tags", "equals", "donor")])
    by_index(database, bucket, donors, columns=server(on_disk))
    # As if the database had been restored from before the snapshot was taken.
    for meta in on_disk.rglob("meta.json"):
        saved = json.loads(meta.read_text())
        saved["seen"] += 1_000
        meta.write_text(json.dumps(saved))
    answer = by_index(database, bucket, donors, columns=server(on_disk))
    assert answer == by_sql(database, bucket, donors)
    assert opened(caplog) == 0


def test_a_jobs_record_set_comes_from_the_kept_store(crowd: Tenant, database: Database) -> None:
    """What a job freezes is what SQL selects, whether the index answers or not."""
    bucket = crowd.bucket
    donors = node_for(database, bucket, [rule("tags", "equals", "donor")])

    def frozen() -> tuple[int | None, list[tuple[str, str]], list[tuple[str, str]]]:
        with unit_of_work(database.sessions) as session:
            behind = columns_lag(session, bucket=bucket, resource_type="person")
            keys = selected_keys(session, bucket=bucket, resource_type="person", node=donors)
            by_query = list(stream_keys(session, selection(bucket, "person", donors)))
        return behind, keys, by_query

    by_index(database, bucket, donors)  # the process now keeps the store
    write_elsewhere(database, bucket, person(88, tags=["donor"]))
    behind, keys, by_query = frozen()
    assert behind == 1 and keys == by_query and len(keys) == 15


def mapped_arrays(store: Store) -> int:
    """How many of a store's row arrays are mappings of its files (each holds a descriptor)."""
    arrays = [store.active, *(c.codes for c in store.columns.values())]
    return sum(isinstance(a, np.memmap) or isinstance(a.base, np.memmap) for a in arrays)


def test_small_arrays_are_read_not_mapped(
    crowd: Tenant, database: Database, on_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store's arrays below MAP_AT_LEAST are read when opened, so hundreds of small
    stores (many tenants) hold no file descriptors; the answers are the same."""
    bucket = crowd.bucket
    donors = node_for(database, bucket, [rule("tags", "equals", "donor")])
    by_index(database, bucket, donors, columns=server(on_disk))  # saved
    mapping = server(on_disk)
    assert by_index(database, bucket, donors, columns=mapping) == by_sql(database, bucket, donors)
    assert mapped_arrays(store_of(mapping, database, bucket)) > 0  # the tests' setting
    monkeypatch.setattr(persist, "MAP_AT_LEAST", 1 << 20)
    reading = server(on_disk)
    assert by_index(database, bucket, donors, columns=reading) == by_sql(database, bucket, donors)
    assert mapped_arrays(store_of(reading, database, bucket)) == 0


def test_a_fresh_workers_freeze_opens_the_saved_store(
    crowd: Tenant, database: Database, on_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker that has not used the store yet takes a job's record set from the snapshot
    on disk (and the rows written since), not from SQL; contacts, kept as two types in one
    store, still come from SQL."""
    caplog.set_level("INFO", logger="fold.columns")
    bucket = crowd.bucket
    donors = node_for(database, bucket, [rule("tags", "equals", "donor")])
    by_index(database, bucket, donors, columns=server(on_disk))  # saved
    write_elsewhere(database, bucket, person(89, tags=["donor"]))
    worker = server(on_disk)
    factory = worker.attach(sessions_for(database.engine))
    with unit_of_work(factory) as session:
        behind = columns_lag(session, bucket=bucket, resource_type="person", open_from_disk=True)
        keys = selected_keys(session, bucket=bucket, resource_type="person", node=donors)
        by_query = list(stream_keys(session, selection(bucket, "person", donors)))
        contacts = columns_lag(session, bucket=bucket, resource_type="contact")
    assert behind == 1 and keys == by_query and len(keys) == 15
    assert opened(caplog) == 1 and contacts is None


# --- a column's entries, saved and mapped ---------------------------------------------------

TEXTS = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["York", " york ", "YORK", "Yo\x00", "\x00", "\ud800x", "é", "a" * 40, ""]),
)
VALUES = st.one_of(
    TEXTS,
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.lists(st.one_of(TEXTS, st.integers(-3, 3)), max_size=3),
    st.dictionaries(st.sampled_from("ab"), st.integers(0, 2), max_size=1),
)
ARGUMENTS = {
    "string": TEXTS,
    "number": st.one_of(st.integers(-(2**60), 2**60), st.floats(allow_nan=False)),
    "boolean": st.booleans(),
}


def _saved_and_opened(directory: Path, values: list[Any]) -> Column:
    """A store of one row per value, its column "f" saved and then opened from disk."""
    return _opened_store(directory, values).columns["f"]


def _opened_store(directory: Path, values: list[Any]) -> Store:
    store = Store("b1", "person")
    store.n = len(values)
    store.uids = Uids.of([f"u{i}" for i in range(len(values))])
    store.search = SearchText.of(["" for _ in values])
    store.active = np.ones(len(values), dtype=bool)
    store.created = np.zeros(len(values), dtype=np.int64)
    store.last_updated = np.zeros(len(values), dtype=np.int64)
    column = Column("f", len(values))
    for row, value in enumerate(values):
        column.codes[row] = column.encode_text(json_key(value))
    store.columns = {"f": column}
    store.loaded = True
    return _reopened(directory, store)


def _reopened(directory: Path, store: Store) -> Store:
    Snapshots(directory).save(store, "db")
    opened_store = Store("b1", "person")
    assert Snapshots(directory).open(opened_store, "db", store.seen)
    return opened_store


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(VALUES, min_size=1, max_size=12),
    later=st.lists(VALUES, max_size=3),
    data=st.data(),
)
def test_saved_entries_answer_every_test_as_python_does(
    tmp_path_factory: pytest.TempPathFactory,
    values: list[Any],
    later: list[Any],
    data: st.DataObject,
) -> None:
    """A column opened from disk tests its mapped (or packed) entries, and entries a write
    added after (apart), exactly as each test's Python meaning does, vectorised or value
    by value."""
    directory = tmp_path_factory.mktemp("columns")
    kept = persist.MAP_AT_LEAST
    persist.MAP_AT_LEAST = data.draw(st.sampled_from([0, 1 << 20]), label="MAP_AT_LEAST")
    try:
        store = _opened_store(directory, values)
        column = store.columns["f"]
        for value in later:  # written after the snapshot: entries of this process's own
            column.set_code(0, column.encode_text(json_key(value)))
        # ... and saved with them, opened again: the entries' arrays as one.
        resaved = _reopened(directory, store).columns["f"]
    finally:
        persist.MAP_AT_LEAST = kept
    everything = column.values_at(list(range(column.entry_count())))  # (not kept)
    name = data.draw(st.sampled_from(sorted(TESTS)))
    test = TESTS[name]
    kind = data.draw(st.sampled_from(sorted(test.kinds & set(ARGUMENTS))))
    argument = data.draw(ARGUMENTS[kind])
    if name in ("in", "in_fold"):
        argument = [argument, data.draw(ARGUMENTS[kind])]
    if name == "regex":
        pattern = data.draw(st.sampled_from(["^y", "rk$", "o", "^$", "\\x00"]))
        argument = {"pattern": pattern, "flags": data.draw(st.sampled_from(["", "i"]))}
        # RE2 takes UTF-8: the Python meaning itself has no answer for lone surrogates.
        assume(not any(isinstance(v, str) and "\ud800" in v for v in everything))
    if kind != "string" and name in ("eq_fold", "in_fold"):
        return
    expected = [
        code > 0 and kind_of(value) == kind and test.python(value, argument, kind)
        for code, value in enumerate(everything)
    ]
    for smallest in (vector.VECTOR_MIN, 0):
        saved = vector.VECTOR_MIN
        vector.VECTOR_MIN = smallest
        try:
            assert entry_hits(column, test, kind, argument).tolist() == expected
            assert entry_hits(resaved, test, kind, argument).tolist() == expected
        finally:
            vector.VECTOR_MIN = saved


def test_a_column_that_only_counts_makes_no_values(tmp_path: Path) -> None:
    """Opened from disk, a column's tests read its mapped arrays and writes find their
    entries by its saved key index: neither its values nor a map of its keys are made."""
    store = _opened_store(tmp_path, ["York", " york", "Leeds", 3, True, ["a"], "York"])
    column = store.columns["f"]
    hits = entry_hits(column, TESTS["eq_fold"], "string", "york")
    assert hits.sum() == 2
    assert entry_hits(column, TESTS["gt"], "number", 2).sum() == 1
    assert isinstance(column.derived_parts()[0]["string"].folded, np.memmap)
    assert column._values is None and column._keys is None
    # Writes: one to a value an entry holds, one adding an entry. The saved entries stay
    # mapped; the new one is tested apart.
    column.set_code(1, column.encode_text(json_key("Leeds")))
    assert column.codes[1] == column.codes[2]
    column.set_code(0, column.encode_text(json_key("YORK")))
    assert column.entry_count() == 9  # the list's element "a" is an entry too
    assert entry_hits(column, TESTS["eq_fold"], "string", "york").sum() == 3
    assert isinstance(column.derived_parts()[0]["string"].array, np.memmap)
    assert column._values is None and column._keys is None
    assert column.value_of(8) == "YORK" and column.value_of(6) == ["a"]
    assert column.values_at([0, 3, 8, 3]) == [None, "Leeds", "YORK", "Leeds"]
    # Saved again with the new entry and opened once more: the same entries.
    again = _reopened(tmp_path, store).columns["f"]
    assert column._values is None and column._keys is None  # saving made neither
    assert again.entry_count() == 9
    assert entry_hits(again, TESTS["eq_fold"], "string", "york").sum() == 3
    assert entry_hits(again, TESTS["lt"], "number", 4).sum() == 1
    assert again.codes.tolist() == column.codes.tolist()
    assert again.values == [None, "York", " york", "Leeds", 3, True, ["a"], "a", "YORK"]
    assert again.keys == {json_key(v): c for c, v in enumerate(again.values) if c}


def test_snapshots_of_an_older_format_are_built_again(tmp_path: Path) -> None:
    _saved_and_opened(tmp_path, ["York", 1])
    for meta in tmp_path.rglob("meta.json"):
        saved = json.loads(meta.read_text())
        saved["format"] = 4  # before the entries' arrays were saved
        meta.write_text(json.dumps(saved))
    assert not Snapshots(tmp_path).open(Store("b1", "person"), "db", NEVER)


def test_a_small_saved_array_reads_back_as_numpy_reads_it(tmp_path: Path) -> None:
    """`persist.read_small`, which opens small stores' arrays without numpy's general
    header parser, answers what `np.load` answers, writable, for every array a store saves,
    and hands anything else to np.load."""
    arrays = [
        np.arange(10, dtype=np.int32), np.zeros(5, dtype=bool), np.array([1.5, np.nan]),
        np.array(["a", "bcd", "\u00e9"]), np.array([b"x", b"yz"]), np.arange(12).reshape(3, 4),
        np.zeros(0, dtype=np.int64), np.array(3.0), np.array([1, 2], dtype=">i8"),
        np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),  # structured: np.load's
    ]  # fmt: skip
    for array in arrays:
        np.save(tmp_path / "a.npy", array)
        read, loaded = read_small(tmp_path / "a.npy"), np.load(tmp_path / "a.npy")
        assert read.dtype == loaded.dtype and read.shape == loaded.shape
        assert read.tobytes() == loaded.tobytes()
        assert read.flags.writeable


def test_a_large_pack_is_mapped_copy_on_write(tmp_path: Path) -> None:
    """A pack of MAP_AT_LEAST or more (a large store's small arrays) is mapped, not read:
    its pages are shared between processes; an array of it is writable, and a write stays
    in this process, never reaching the file."""
    persist.MAP_AT_LEAST = 1 << 15  # (the tests' setting)
    out = persist.Pack(tmp_path)
    arrays = {f"part{i}.npy": np.arange(5_000, dtype=np.int32) * i for i in range(4)}
    for name, array in arrays.items():
        out.array(name, array)  # 20,000 bytes each: packed; the pack is 80,000
    index = out.close()
    on_disk = (tmp_path / persist.PACK).read_bytes()
    saved = persist.Unpacked(tmp_path, index)
    for name, array in arrays.items():
        read = saved.array(name)
        owner = read
        while isinstance(owner, np.ndarray | memoryview):
            owner = owner.base if isinstance(owner, np.ndarray) else owner.obj
        assert isinstance(owner, mmap.mmap), name
        assert read.tolist() == array.tolist() and read.flags.writeable
        read[0] = -1
    assert (tmp_path / persist.PACK).read_bytes() == on_disk


def test_packed_arrays_read_back_as_saved(tmp_path: Path) -> None:
    """`persist.Pack` puts each array under MAP_AT_LEAST into the snapshot's one pack file
    and a larger one in a file of its own; `persist.Unpacked` gives every one back with
    its type, shape and values, writable; a pack cut short is refused, not misread."""
    persist.MAP_AT_LEAST = 1 << 15  # (the tests' setting maps everything)
    arrays = {
        "ints.npy": np.arange(10, dtype=np.int32), "flags.npy": np.zeros(5, dtype=bool),
        "floats.npy": np.array([1.5, np.nan]), "text.npy": np.array(["a", "bcd", "\u00e9"]),
        "bytes.npy": np.array([b"x", b"yz"]), "grid.npy": np.arange(12).reshape(3, 4),
        "none.npy": np.zeros(0, dtype=np.int64), "one.npy": np.array(3.0),
        "big_endian.npy": np.array([1, 2], dtype=">i8"),
        "strided.npy": np.arange(20, dtype=np.int16)[::3],
        "large.npy": np.arange(5_000, dtype=np.int64),  # 40,000 bytes: a file of its own
    }  # fmt: skip
    out = persist.Pack(tmp_path)
    for name, array in arrays.items():
        out.array(name, array)
    out.rows("rows.npy", np.arange(7, dtype=np.int32))
    out.text("keys.json", json.dumps(["", '"a"', "1"]))
    index = out.close()
    (tmp_path / "meta.json").write_text(json.dumps(index))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["large.npy", "meta.json", persist.PACK]
    saved = persist.Unpacked(tmp_path, json.loads((tmp_path / "meta.json").read_text()))
    for name, array in arrays.items():
        read = saved.array(name)
        assert read.dtype == array.dtype and read.shape == array.shape, name
        assert read.tobytes() == np.ascontiguousarray(array).tobytes(), name
        assert read.flags.writeable, name
    rows = saved.rows("rows.npy", 7)
    assert rows.tolist() == list(range(7)) and len(rows.base) >= 7 + persist.SPARE
    assert saved.keys("keys.json")() == ["", '"a"', "1"]
    with pytest.raises(ValueError):
        saved.rows("rows.npy", len(rows.base) + 1)
    # Cut short (a disk that filled while it was written): refused.
    packed = (tmp_path / persist.PACK).read_bytes()
    (tmp_path / persist.PACK).write_bytes(packed[: len(packed) // 2])
    cut = persist.Unpacked(tmp_path, index)
    with pytest.raises(ValueError):
        for name in index:
            cut.array(name)


def test_a_lag_past_its_limit_is_not_counted_further(crowd: Tenant, database: Database) -> None:
    """`up_to` bounds the count of rows written since (a job's freeze only asks whether
    the store is close enough)."""
    bucket = crowd.bucket
    donors = node_for(database, bucket, [rule("tags", "equals", "donor")])
    by_index(database, bucket, donors)  # the process now keeps the store
    for n in (90, 91, 92):
        write_elsewhere(database, bucket, person(n, tags=["donor"]))
    with unit_of_work(database.sessions) as session:
        assert columns_lag(session, bucket=bucket, resource_type="person") == 3
        assert columns_lag(session, bucket=bucket, resource_type="person", up_to=1) == 2
        assert columns_lag(session, bucket=bucket, resource_type="person", up_to=5) == 3
