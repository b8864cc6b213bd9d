"""Column data kept on disk beside the database, so that a restarted server (or a second
process) opens a store instead of reading a million records again.

A snapshot is one directory holding a store exactly as it stood at a clock value `seen`:
Fold's own columns, every document column built so far, every sort order read, as numpy
files opened memory-mapped (copy-on-write, so a process that applies later writes keeps
its changes to itself and shares every page it has not written with the others through
the page cache). Opening one is the same as having built the store at `seen`: the
store's refresh then applies every row written since, from the change clock, as it always
does. So a snapshot can be old, never wrong.

Snapshots are keyed by the database's own identity (`database_identity`, a random value
made once per database), so a database dropped and made again under the same name never
meets the snapshots of the old one; one whose clock is behind a snapshot's (restored from
a backup) is not opened either. Each snapshot is written to a directory of its own and
published by renaming a small `current` file, so readers never see half of one.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import logging
import mmap
import os
import re
import secrets
import shutil
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from hashlib import sha256
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from fold.columns import catalogue
from fold.columns.catalogue import Dormant
from fold.columns.rowdata import SearchText, Uids
from fold.columns.store import KINDS, Column, Rank, Store
from fold.records.clock import Reading, behind, era

log = logging.getLogger("fold.columns")

# 4: uids, search text and entries mapped, the display value a column like others, and
# the clock reading as `Reading.as_json` has it. 5: each column's per-kind arrays of its
# entries (`Column.saved_arrays`) and its key index (`Column.key_index`) mapped too.
# 6: the catalogue (fold.columns.catalogue). 7: per-row arrays with spare rows (`_rows`).
FORMAT = 7
KEEP = 2  # snapshots of a store kept on disk (others still open elsewhere stay readable)


def database_identity(connection: Connection) -> str | None:
    """The database's random identity (made by its migration) and its clock's era; None
    when it has none."""
    try:
        found = connection.scalar(text("SELECT value FROM database_identity WHERE id = 1"))
    except DBAPIError:  # not migrated this far
        return None
    if not found:
        return None
    # Restored into another PostgreSQL cluster, the same database counts its clock anew.
    counted = era(connection)
    return f"{found}-{counted}" if counted else str(found)


def _name(value: str) -> str:
    """A file-system-safe name for a bucket, type, path or sort."""
    return sha256(value.encode()).hexdigest()[:24]


def _mapped_text(file: Path) -> mmap.mmap:
    """A file mapped now and read later: still there when a newer snapshot has pruned it."""
    with file.open("rb") as handle:
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


def _keys(mapped: mmap.mmap) -> list[str]:
    """A column's saved keys, parsed when the column is first used."""
    keys: list[str] = json.loads(mapped[:])
    return keys


class Snapshots:
    """Where one application keeps its stores' snapshots: `<data dir>/columns`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _home(self, identity: str, bucket: str, resource_type: str) -> Path:
        return self.root / identity / _name(f"{bucket}\x00{resource_type}")

    # --- writing ----------------------------------------------------------------------------

    def save(self, store: Store, identity: str) -> None:
        """Write the store as it stands (the caller holds its lock) and publish it."""
        home = self._home(identity, store.bucket, store.resource_type)
        home.mkdir(parents=True, exist_ok=True)
        name = f"s{store.seen.upto}-{secrets.token_hex(4)}"
        target = home / name
        target.mkdir()
        uids = store.uids.packed_all()
        if store.dormant is None:
            store.dormant = _adopted(home, store, uids)
        try:
            self._write(store, target, uids)
            pointer = home / f".current-{secrets.token_hex(4)}"
            pointer.write_text(name)
            os.replace(pointer, home / "current")
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        # From now on mapped from this snapshot, as another process opening it maps it: what
        # this process read or made is no longer its own (the same rows, the same values),
        # and the catalogue is opened from here (the one it came from may be pruned below).
        self._read(store, target, json.loads((target / "meta.json").read_text()))
        _trim()
        self._prune(home, name)

    def _write(self, store: Store, target: Path, uids: Uids) -> None:
        np.save(target / "uids.npy", uids.packed)
        np.save(target / "uids_order.npy", uids.order)
        np.save(target / "uids_sorted.npy", uids.sorted)
        blob, offsets = store.search.packed()
        np.save(target / "search.npy", blob)
        np.save(target / "search_offsets.npy", offsets)
        _rows(target / "active.npy", store.active)
        _rows(target / "created.npy", store.created)
        _rows(target / "last_updated.npy", store.last_updated)
        columns = {}
        entries = {}
        for path, column in store.columns.items():
            stem = f"c{_name(path)}"
            entries[path] = _write_column(target, stem, column)
            columns[path] = stem
        ranks = []
        for sort, rank in store.ranks.items():
            stem = f"r{_name(json.dumps(sort))}"
            np.save(target / f"{stem}.order.npy", np.asarray(rank.order))
            _rows(target / f"{stem}.dirty.npy", rank.dirty)
            ranks.append({"sort": list(sort), "stem": stem, "dirty_count": rank.dirty_count})
        meta = {
            "format": FORMAT, "bucket": store.bucket, "resource_type": store.resource_type,
            **store.seen.as_json(), "n": store.n, "columns": columns, "ranks": ranks,
            "entries": entries,
        }  # fmt: skip
        if store.dormant is not None:
            meta["catalogue"] = catalogue.write(
                store.dormant, partial(_keep_asleep, target, store.dormant)
            )
        (target / "meta.json").write_text(json.dumps(meta))

    def _prune(self, home: Path, keep: str) -> None:
        """Drop all but the newest KEEP snapshots (a process that has one open keeps its
        mapped pages: the files go only when the last mapping does)."""
        made = sorted(
            (p for p in home.iterdir() if p.is_dir() and p.name != keep),
            key=lambda p: p.stat().st_mtime,
        )
        for old in made[: max(0, len(made) - (KEEP - 1))]:
            shutil.rmtree(old, ignore_errors=True)

    @contextmanager
    def claim(self, identity: str, store: Store) -> Iterator[bool]:
        """Whether this process is the one making the store's catalogue now (a lock on a
        file beside its snapshots, let go when the block ends or the process does)."""
        with self._held(identity, store, "catalogue.lock") as mine:
            yield mine

    @contextmanager
    def saving(self, identity: str, store: Store) -> Iterator[bool]:
        """Whether this process is the one saving the store for the rows it holds of its own
        now (`index.Saver.share`): one at a time, the others map what it saves."""
        with self._held(identity, store, "save.lock") as mine:
            yield mine

    @contextmanager
    def _held(self, identity: str, store: Store, name: str) -> Iterator[bool]:
        """Whether this process holds the lock file `name` beside the store's snapshots now
        (let go when the block ends or the process does)."""
        home = self._home(identity, store.bucket, store.resource_type)
        home.mkdir(parents=True, exist_ok=True)
        with (home / name).open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def current(self, identity: str, store: Store) -> str | None:
        """The name of the store's current snapshot (None: none yet)."""
        home = self._home(identity, store.bucket, store.resource_type)
        try:
            return (home / "current").read_text().strip()
        except OSError:
            return None

    def uncatalogued(self, buckets: Collection[str] | None = None, at_least: int = 0) -> int:
        """How many stores' current snapshots (of any database here; of `buckets` only,
        when given; of `at_least` rows) have no catalogue yet."""
        missing = 0
        for home in self.root.glob("*/*"):
            try:
                current = home / (home / "current").read_text().strip()
                meta = json.loads((current / "meta.json").read_text())
            except (OSError, ValueError):
                continue
            wanted = buckets is None or meta.get("bucket") in buckets
            if wanted and meta.get("n", at_least) >= at_least:
                missing += "catalogue" not in meta
        return missing

    # --- reading ----------------------------------------------------------------------------

    def open(self, store: Store, identity: str, clock_now: Reading) -> bool:
        """Fill an empty store from the newest snapshot; False when there is none that
        can be used (none yet, another format, or a clock that went back)."""
        home = self._home(identity, store.bucket, store.resource_type)
        try:
            name = (home / "current").read_text().strip()
            source = home / name
            meta = json.loads((source / "meta.json").read_text())
        except (OSError, ValueError):
            return False
        if (
            meta.get("format") != FORMAT
            or meta.get("bucket") != store.bucket
            or meta.get("resource_type") != store.resource_type
            or behind(clock_now, Reading.from_json(meta))
        ):
            return False
        try:
            self._read(store, source, meta)
        except (OSError, ValueError, KeyError) as exc:  # pruned meanwhile, cut short: build
            log.warning("column snapshot %s not opened: %s", source, exc)
            return False
        return True

    def _read(self, store: Store, source: Path, meta: dict[str, Any]) -> None:
        n = int(meta["n"])

        def mapped(file: str) -> Any:
            # Copy-on-write: writes applied later stay in this process.
            return _map(source / file)

        def rows(file: str) -> Any:
            return _rows_of(source / file, n)

        uids = Uids(mapped("uids.npy"), mapped("uids_order.npy"), mapped("uids_sorted.npy"))
        search = SearchText(mapped("search.npy"), mapped("search_offsets.npy"))
        columns = {
            path: _open_column(source, path, stem, meta["entries"][path], n)
            for path, stem in meta["columns"].items()
        }
        ranks = {
            tuple(r["sort"]): Rank(
                mapped(f"{r['stem']}.order.npy"),
                rows(f"{r['stem']}.dirty.npy"),
                int(r["dirty_count"]),
            )
            for r in meta["ranks"]
        }
        if len(uids) != n or len(search) != n or any(len(c.codes) != n for c in columns.values()):
            raise ValueError("sizes differ")
        store.uids = uids
        store.search = search
        active = rows("active.npy")
        store.active = active
        store.created = rows("created.npy")
        store.last_updated = rows("last_updated.npy")
        store.columns = columns
        store.ranks = ranks
        about = meta.get("catalogue")
        store.dormant = None
        if about is not None:
            opener = partial(_open_asleep, source.parent, source, int(about["n"]))
            store.dormant = catalogue.read(about, opener, source)
        store.snapshot = source.name
        store.room = len(active.base)
        store.n = n
        store.seen = Reading.from_json(meta)
        store.loaded = True


def _adopted(home: Path, store: Store, uids: Uids) -> Dormant | None:
    """The catalogue of the store's current snapshot on disk, for a store saved without
    one (its process opened it before the catalogue was made) whose first rows are the
    catalogue's: kept, not dropped by this save. It keeps its own clock reading, so waking
    reads again the rows written since."""
    try:
        source = home / (home / "current").read_text().strip()
        meta = json.loads((source / "meta.json").read_text())
        about = meta.get("catalogue")
        if about is None or meta.get("format") != FORMAT:
            return None
        n = int(about["n"])
        theirs = np.load(source / "uids.npy", mmap_mode="r")
        ours = uids.packed
        if n > len(ours) or n > len(theirs) or not np.array_equal(ours[:n], theirs[:n]):
            return None
        return catalogue.read(about, partial(_open_asleep, home, source, n), source)
    except (OSError, ValueError, KeyError):  # pruned meanwhile, cut short: none
        return None


# --- a column's entries as arrays -----------------------------------------------------------


# A column's keys as fixed-width arrays (`Column.key_index`): in code order, sorted, and
# the code of each sorted key.
KEY_INDEX = ("keys", "keys_sorted", "keys_codes")


SPARE_SHARE = 32  # a snapshot's per-row arrays have room for 1/32 more rows (at least SPARE)
SPARE = 4_096


def _rows(file: Path, array: Any) -> None:
    """Save a per-row array with spare zero rows after it, into which the rows a process
    adds later go without copying the array (`rowdata.grown`)."""
    size = len(array)
    saved = np.lib.format.open_memmap(
        file, mode="w+", dtype=array.dtype, shape=(size + max(SPARE, size // SPARE_SHARE),)
    )
    saved[:size] = array
    saved.flush()
    del saved


def _rows_of(file: Path, n: int) -> Any:
    """A per-row array saved by `_rows`: its first `n` rows, a view of the whole mapping
    (its `base`, the room it may grow into)."""
    whole = _map(file)  # copy-on-write: writes stay in this process
    if whole.ndim != 1 or len(whole) < n:
        raise ValueError("sizes differ")
    return whole[:n]


def _trim() -> None:
    """Give the heap's free pages back to the system (glibc keeps them otherwise): the
    arrays a save has just swapped for mapped ones."""
    with suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL(None).malloc_trim(0)


def _write_column(target: Path, stem: str, column: Column) -> dict[str, Any]:
    """Save a column under `stem`: its codes, list pairs, keys and entries' arrays; answers
    what the meta file says of its entries."""
    _rows(target / f"{stem}.npy", column.codes)
    np.save(target / f"{stem}.owners.npy", np.array(column.owners, dtype=np.int64))
    np.save(target / f"{stem}.elements.npy", np.array(column.elements, dtype=np.int64))
    # ASCII (escapes for the rest): lone surrogates in JSON text round-trip too.
    (target / f"{stem}.json").write_text(json.dumps(column.key_list()))
    return _write_entries(column, target, stem)


def _open_column(source: Path, path: str, stem: str, entries: dict[str, Any], n: int) -> Column:
    column = Column(
        path,
        0,
        saved=partial(_keys, _mapped_text(source / f"{stem}.json")),
        owners=np.load(source / f"{stem}.owners.npy").tolist(),
        elements=np.load(source / f"{stem}.elements.npy").tolist(),
    )
    column.codes = _rows_of(source / f"{stem}.npy", n)
    _open_entries(column, source, stem, entries)
    return column


def _open_asleep(home: Path, source: Path, n: int, path: str, stem: str, entries: Any) -> Column:
    """A catalogue column opened when first woken: from the snapshot the store was opened
    from or last saved to, or, when another process has pruned that one meanwhile, from
    the store's current snapshot (every snapshot carrying the catalogue links its files)."""
    try:
        return _open_column(source, path, stem, entries, n)
    except FileNotFoundError:
        current = home / (home / "current").read_text().strip()
        return _open_column(current, path, stem, entries, n)


def _keep_asleep(target: Path, dormant: Dormant, path: str) -> tuple[str, dict[str, Any]]:
    """A catalogue column in a new snapshot: its files linked to those it was opened from
    (they never change), or written when it was made by this process; answers its stem
    and what the meta file says of its entries."""
    stem = dormant.files.get(path)
    if stem is not None and dormant.source is not None:
        for file in dormant.source.glob(f"{stem}.*"):
            os.link(file, target / file.name)
        return stem, dormant.entries[path]
    stem = f"d{_name(path)}"
    return stem, _write_column(target, stem, dormant.columns[path])


def _write_entries(column: Column, target: Path, stem: str) -> dict[str, Any]:
    """Save the per-kind arrays of a column's entries (`Column.saved_arrays`); what the
    meta file says of them: how many entries, and per kind which arrays and whether its
    numbers are exact (no kinds: not saved, made again from the keys when used)."""
    index = column.key_index()
    if index is not None:
        for name, array in zip(KEY_INDEX, index, strict=True):
            np.save(target / f"{stem}.{name}.npy", np.asarray(array))
    arrays = column.saved_arrays()
    info: dict[str, Any] = {
        "count": column.entry_count(), "kinds": None, "key_index": index is not None,
    }  # fmt: skip
    if arrays is None:
        return info
    np.save(target / f"{stem}.as_number.npy", np.asarray(arrays["as_number"]))
    kinds: dict[str, Any] = {}
    for kind in KINDS:
        typed = arrays.get(kind)
        if typed is None:
            continue
        saved = {"ids": typed.ids}
        if typed.array is not None:
            saved["array"] = typed.array
        if kind == "string":
            saved["folded"] = typed.folded
            saved["lowered"] = typed.lowered
        for name, array in saved.items():
            np.save(target / f"{stem}.{kind}.{name}.npy", np.asarray(array))
        kinds[kind] = {"arrays": list(saved), "exact": bool(typed.exact)}
    info["kinds"] = kinds
    return info


def _open_entries(column: Column, source: Path, stem: str, info: dict[str, Any]) -> None:
    """Map a column's saved entry arrays now (a newer snapshot may prune the files before
    they are first used; a mapping keeps them) and hand them to the column."""
    count = int(info["count"])
    if info["key_index"]:
        keys, ordered, codes = (_map(source / f"{stem}.{name}.npy") for name in KEY_INDEX)
        if len(keys) != count or len(ordered) != count - 1 or len(codes) != count - 1:
            raise ValueError("sizes differ")
        column.use_key_index(keys, ordered, codes)
    kinds = info["kinds"]
    if kinds is None:
        column.use_saved(count, None, {})
        return
    arrays: dict[str, Any] = {"as_number": _map(source / f"{stem}.as_number.npy")}
    held = 1  # entry 0, no value, is of no kind
    for kind, about in kinds.items():
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind}")
        for name in about["arrays"]:
            found = _map(source / f"{stem}.{kind}.{name}.npy")
            arrays[kind if name == "ids" else f"{kind}.{name}"] = found
            if len(found) != len(arrays[kind]):
                raise ValueError("sizes differ")
        held += len(arrays[kind])
    if held != count or len(arrays["as_number"]) != count:
        raise ValueError("sizes differ")
    exact = {kind: bool(about["exact"]) for kind, about in kinds.items()}
    column.use_saved(count, arrays, exact)


MAP_AT_LEAST = 1 << 20
"""Bytes from which a saved array is mapped rather than read. Each mapping holds a file
descriptor open for as long as it lives: a server holding hundreds of small stores (many
tenants) mapped every one of their arrays and ran out of descriptors. A small array read
costs its own few pages; a large one is mapped and shared with the other processes."""


def _map(file: Path) -> Any:
    """A saved array, memory-mapped copy-on-write (never written: shared with every other
    process that maps it); read into memory when smaller than MAP_AT_LEAST."""
    if file.stat().st_size < MAP_AT_LEAST:
        return read_small(file)
    return np.load(file, mmap_mode="c")


# The header np.save writes for a plain array (format 1.0 or 2.0).
_NPY_HEADER = re.compile(
    r"\{'descr': '([<>|=][A-Za-z]\d*)', 'fortran_order': False, 'shape': \(([\d, ]*)\), \}\s*$"
)


def read_small(file: Path) -> Any:
    """`np.load(file)` for a plain array np.save wrote, in one read and without numpy's
    general header parser (a Python literal evaluated): opening a small tenant's store
    reads some seventy of these, and the parser was half of the time. Anything else goes
    to np.load."""
    data = file.read_bytes()
    if data[:6] != b"\x93NUMPY" or data[6] not in (1, 2):
        return np.load(file)
    size, start = (int.from_bytes(data[8:10], "little"), 10) if data[6] == 1 else (
        int.from_bytes(data[8:12], "little"), 12)  # fmt: skip
    found = _NPY_HEADER.match(data[start : start + size].decode("latin1"))
    if found is None:
        return np.load(file)
    dtype = np.dtype(found[1])
    shape = tuple(int(x) for x in found[2].replace(" ", "").split(",") if x)
    count = int(np.prod(shape)) if shape else 1
    if dtype.hasobject or len(data) - start - size != count * dtype.itemsize:
        return np.load(file)
    array = np.frombuffer(bytearray(data), dtype, count, start + size)  # writable, as np.load's
    return array.reshape(shape)
