"""Column data kept on disk beside the database, so that a restarted server (or a second
process) opens a store instead of reading a million records again.

A snapshot is one directory holding a store exactly as it stood at a clock value `seen`:
Fold's own columns, every document column built so far, every sort order read: the large
arrays as numpy files opened memory-mapped (copy-on-write, so a process that applies later
writes keeps its changes to itself and shares every page it has not written with the
others through the page cache), the small ones in one pack file read whole (`Pack`).
Opening one is the same as having built the store at `seen`: the store's refresh then
applies every row written since, from the change clock, as it always does. So a snapshot
can be old, never wrong.

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
from collections.abc import Callable, Collection, Iterator
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
# 8: arrays under MAP_AT_LEAST in one pack file (`Pack`).
FORMAT = 8
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
        out = Pack(target)
        out.array("uids.npy", uids.packed)
        out.array("uids_order.npy", uids.order)
        out.array("uids_sorted.npy", uids.sorted)
        blob, offsets = store.search.packed()
        out.array("search.npy", blob)
        out.array("search_offsets.npy", offsets)
        out.rows("active.npy", store.active)
        out.rows("created.npy", store.created)
        out.rows("last_updated.npy", store.last_updated)
        columns = {}
        entries = {}
        for path, column in store.columns.items():
            stem = f"c{_name(path)}"
            entries[path] = _write_column(out, stem, column)
            columns[path] = stem
        ranks = []
        for sort, rank in store.ranks.items():
            stem = f"r{_name(json.dumps(sort))}"
            out.array(f"{stem}.order.npy", np.asarray(rank.order))
            out.rows(f"{stem}.dirty.npy", rank.dirty)
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
        meta["pack"] = out.close()
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
        saved = Unpacked(source, meta["pack"])
        uids = Uids(
            saved.array("uids.npy"), saved.array("uids_order.npy"), saved.array("uids_sorted.npy")
        )
        search = SearchText(saved.array("search.npy"), saved.array("search_offsets.npy"))
        columns = {
            path: _open_column(saved, path, stem, meta["entries"][path], n)
            for path, stem in meta["columns"].items()
        }
        ranks = {
            tuple(r["sort"]): Rank(
                saved.array(f"{r['stem']}.order.npy"),
                saved.rows(f"{r['stem']}.dirty.npy", n),
                int(r["dirty_count"]),
            )
            for r in meta["ranks"]
        }
        if len(uids) != n or len(search) != n or any(len(c.codes) != n for c in columns.values()):
            raise ValueError("sizes differ")
        store.uids = uids
        store.search = search
        active = saved.rows("active.npy", n)
        store.active = active
        store.created = saved.rows("created.npy", n)
        store.last_updated = saved.rows("last_updated.npy", n)
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
        theirs = Unpacked(source, meta["pack"]).array("uids.npy")
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


# --- a snapshot's arrays: small ones in one pack, large ones mapped ---------------------------

PACK = "small.pack"
ALIGN = 64  # each array in a pack starts at a multiple of this


class Pack:
    """Writes a snapshot's arrays. One under MAP_AT_LEAST goes into the snapshot's pack
    file, which an opening process reads whole: a store of a few thousand rows is some
    seventy small arrays, and opening each file of its own was most of a small tenant's
    first request. A larger one is a .npy file of its own, mapped when opened (shared
    between processes). `packing=False`: every array a file of its own (a catalogue's
    columns, which later snapshots link rather than write again)."""

    def __init__(self, target: Path, *, packing: bool = True) -> None:
        self.target = target
        self.packing = packing
        self._parts: list[bytes] = []
        self._size = 0
        self._index: dict[str, list[Any]] = {}

    def array(self, name: str, array: Any) -> None:
        array = np.asarray(array)
        if self.packing and array.nbytes < MAP_AT_LEAST and not array.dtype.hasobject:
            self._add(name, array)
        else:
            np.save(self.target / name, array)

    def rows(self, name: str, array: Any) -> None:
        """A per-row array with spare zero rows after it, into which the rows a process adds
        later go without copying the array (`rowdata.grown`)."""
        size = len(array)
        shape = (size + max(SPARE, size // SPARE_SHARE),)
        if self.packing and shape[0] * array.dtype.itemsize < MAP_AT_LEAST:
            whole = np.zeros(shape, dtype=array.dtype)
            whole[:size] = array
            self._add(name, whole)
            return
        saved = np.lib.format.open_memmap(
            self.target / name, mode="w+", dtype=array.dtype, shape=shape
        )
        saved[:size] = array
        saved.flush()
        del saved

    def text(self, name: str, text: str) -> None:
        """ASCII text (a column's keys as JSON)."""
        data = text.encode("ascii")
        if self.packing and len(data) < MAP_AT_LEAST:
            self._add(name, np.frombuffer(data, dtype=np.uint8))
        else:
            (self.target / name).write_bytes(data)

    def _add(self, name: str, array: Any) -> None:
        padding = -self._size % ALIGN
        self._parts.append(b"\0" * padding)
        self._index[name] = [array.dtype.str, list(array.shape), self._size + padding]
        self._parts.append(array.tobytes())
        self._size += padding + array.nbytes

    def close(self) -> dict[str, list[Any]]:
        """Write the pack (when anything is in it); what the meta file says of it."""
        if self._index:
            with (self.target / PACK).open("wb") as out:
                out.writelines(self._parts)
        self._parts = []
        return self._index


class Unpacked:
    """A snapshot's arrays as `Pack` wrote them, every array not in the pack mapped or read
    as `_map` does. The pack is opened when an array of it is first asked for, writable
    either way: read whole when smaller than MAP_AT_LEAST (a small store's: hundreds of
    them hold no file descriptor), else mapped copy-on-write, its pages shared with every
    process that maps it until one writes to them. Read whole, a million-people bucket's
    packs were 17.5 MB of every serving process's own heap."""

    def __init__(self, source: Path, index: dict[str, list[Any]] | None = None) -> None:
        self.source = source
        self._index = index or {}
        self._pack: mmap.mmap | bytearray | None = None

    def _packed(self) -> mmap.mmap | bytearray:
        if self._pack is None:
            with (self.source / PACK).open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size >= MAP_AT_LEAST:
                    self._pack = mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_COPY)
                else:
                    self._pack = bytearray(size)
                    if handle.readinto(self._pack) != size:
                        raise ValueError("pack cut short")
        return self._pack

    def array(self, name: str) -> Any:
        found = self._index.get(name)
        if found is None:
            return _map(self.source / name)
        descr, shape, offset = found
        dtype = np.dtype(descr)
        count = int(np.prod(shape)) if shape else 1
        packed = self._packed()
        if dtype.hasobject or offset + count * dtype.itemsize > len(packed):
            raise ValueError(f"{name} does not fit the pack")
        return np.frombuffer(packed, dtype, count, offset).reshape(shape)

    def rows(self, name: str, n: int) -> Any:
        """A per-row array saved by `Pack.rows`: its first `n` rows, a view of the whole
        array (its `base`, the room it may grow into)."""
        whole = self.array(name)  # a mapping is copy-on-write: writes stay in this process
        if whole.ndim != 1 or len(whole) < n:
            raise ValueError("sizes differ")
        return whole[:n]

    def keys(self, name: str) -> Callable[[], list[str]]:
        """A column's saved keys, parsed when the column is first used (a file is mapped
        now: a newer snapshot may prune it before then)."""
        if name in self._index:
            return partial(_parsed, self.array(name))
        return partial(_parsed, _mapped_text(self.source / name))


def _parsed(text: Any) -> list[str]:
    keys: list[str] = json.loads(bytes(text))
    return keys


def _trim() -> None:
    """Give the heap's free pages back to the system (glibc keeps them otherwise): the
    arrays a save has just swapped for mapped ones."""
    with suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL(None).malloc_trim(0)


def _write_column(out: Pack, stem: str, column: Column) -> dict[str, Any]:
    """Save a column under `stem`: its codes, list pairs, keys and entries' arrays; answers
    what the meta file says of its entries."""
    out.rows(f"{stem}.npy", column.codes)
    out.array(f"{stem}.owners.npy", np.array(column.owners, dtype=np.int64))
    out.array(f"{stem}.elements.npy", np.array(column.elements, dtype=np.int64))
    # ASCII (escapes for the rest): lone surrogates in JSON text round-trip too.
    out.text(f"{stem}.json", json.dumps(column.key_list()))
    return _write_entries(column, out, stem)


def _open_column(saved: Unpacked, path: str, stem: str, entries: dict[str, Any], n: int) -> Column:
    column = Column(
        path,
        0,
        saved=saved.keys(f"{stem}.json"),
        owners=saved.array(f"{stem}.owners.npy").tolist(),
        elements=saved.array(f"{stem}.elements.npy").tolist(),
    )
    column.codes = saved.rows(f"{stem}.npy", n)
    _open_entries(column, saved, stem, entries)
    return column


def _open_asleep(home: Path, source: Path, n: int, path: str, stem: str, entries: Any) -> Column:
    """A catalogue column opened when first woken: from the snapshot the store was opened
    from or last saved to, or, when another process has pruned that one meanwhile, from
    the store's current snapshot (every snapshot carrying the catalogue links its files)."""
    try:
        return _open_column(Unpacked(source), path, stem, entries, n)
    except FileNotFoundError:
        current = home / (home / "current").read_text().strip()
        return _open_column(Unpacked(current), path, stem, entries, n)


def _keep_asleep(target: Path, dormant: Dormant, path: str) -> tuple[str, dict[str, Any]]:
    """A catalogue column in a new snapshot: its files linked to those it was opened from
    (they never change), or written when it was made by this process; answers its stem
    and what the meta file says of its entries."""
    stem = dormant.files.get(path)
    if stem is not None and dormant.source is not None:
        for file in dormant.source.glob(f"{stem}.*"):
            os.link(file, target / file.name)
        return stem, dormant.entries[path]
    # Files of its own, never packed: the next snapshot links them.
    stem = f"d{_name(path)}"
    return stem, _write_column(Pack(target, packing=False), stem, dormant.columns[path])


def _write_entries(column: Column, out: Pack, stem: str) -> dict[str, Any]:
    """Save the per-kind arrays of a column's entries (`Column.saved_arrays`); what the
    meta file says of them: how many entries, and per kind which arrays and whether its
    numbers are exact (no kinds: not saved, made again from the keys when used)."""
    index = column.key_index()
    if index is not None:
        for name, array in zip(KEY_INDEX, index, strict=True):
            out.array(f"{stem}.{name}.npy", np.asarray(array))
    arrays = column.saved_arrays()
    info: dict[str, Any] = {
        "count": column.entry_count(), "kinds": None, "key_index": index is not None,
    }  # fmt: skip
    if arrays is None:
        return info
    out.array(f"{stem}.as_number.npy", np.asarray(arrays["as_number"]))
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
            out.array(f"{stem}.{kind}.{name}.npy", np.asarray(array))
        kinds[kind] = {"arrays": list(saved), "exact": bool(typed.exact)}
    info["kinds"] = kinds
    return info


def _open_entries(column: Column, saved: Unpacked, stem: str, info: dict[str, Any]) -> None:
    """Map a column's saved entry arrays now (a newer snapshot may prune the files before
    they are first used; a mapping keeps them) and hand them to the column."""
    count = int(info["count"])
    if info["key_index"]:
        keys, ordered, codes = (saved.array(f"{stem}.{name}.npy") for name in KEY_INDEX)
        if len(keys) != count or len(ordered) != count - 1 or len(codes) != count - 1:
            raise ValueError("sizes differ")
        column.use_key_index(keys, ordered, codes)
    kinds = info["kinds"]
    if kinds is None:
        column.use_saved(count, None, {})
        return
    arrays: dict[str, Any] = {"as_number": saved.array(f"{stem}.as_number.npy")}
    held = 1  # entry 0, no value, is of no kind
    for kind, about in kinds.items():
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind}")
        for name in about["arrays"]:
            found = saved.array(f"{stem}.{kind}.{name}.npy")
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
