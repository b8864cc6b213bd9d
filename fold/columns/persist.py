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

import fcntl
import json
import logging
import mmap
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
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
from fold.columns.store import Column, Rank, Store
from fold.records.clock import Reading, behind, era

log = logging.getLogger("fold.columns")

# 4: uids, search text and entries mapped, the display value a column like others, and
# the clock reading as `Reading.as_json` has it. 5: the catalogue (fold.columns.catalogue).
FORMAT = 5
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


def _write_column(target: Path, stem: str, column: Column) -> str:
    np.save(target / f"{stem}.npy", np.asarray(column.codes))
    np.save(target / f"{stem}.owners.npy", np.array(column.owners, dtype=np.int64))
    np.save(target / f"{stem}.elements.npy", np.array(column.elements, dtype=np.int64))
    # ASCII (escapes for the rest): lone surrogates in JSON text round-trip too.
    (target / f"{stem}.json").write_text(json.dumps(column.key_list()))
    return stem


COLUMN_FILES = (".npy", ".owners.npy", ".elements.npy", ".json")


def _keep_asleep(target: Path, dormant: Dormant, path: str) -> str:
    """A catalogue column in a new snapshot: linked to the one it was opened from (it never
    changes), written when it was made by this process."""
    stem = dormant.files.get(path)
    if stem is not None and dormant.source is not None:
        for suffix in COLUMN_FILES:
            os.link(dormant.source / f"{stem}{suffix}", target / f"{stem}{suffix}")
        return stem
    return _write_column(target, f"d{_name(path)}", dormant.columns[path])


def _open_column(source: Path, path: str, stem: str) -> Column:
    column = Column(
        path,
        0,
        saved=partial(_keys, _mapped_text(source / f"{stem}.json")),
        owners=np.load(source / f"{stem}.owners.npy").tolist(),
        elements=np.load(source / f"{stem}.elements.npy").tolist(),
    )
    # Copy-on-write: writes applied later stay in this process.
    column.codes = np.load(source / f"{stem}.npy", mmap_mode="c")
    return column


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
        try:
            self._write(store, target)
            pointer = home / f".current-{secrets.token_hex(4)}"
            pointer.write_text(name)
            os.replace(pointer, home / "current")
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        if store.dormant is not None and store.dormant.source is None:
            # Made by this read: from now on mapped from disk, not held in memory.
            meta = json.loads((target / "meta.json").read_text())
            store.dormant = catalogue.read(meta["catalogue"], partial(_open_column, target), target)
        self._prune(home, name)

    def _write(self, store: Store, target: Path) -> None:
        uids = store.uids.packed_all()
        np.save(target / "uids.npy", uids.packed)
        np.save(target / "uids_order.npy", uids.order)
        np.save(target / "uids_sorted.npy", uids.sorted)
        blob, offsets = store.search.packed()
        np.save(target / "search.npy", blob)
        np.save(target / "search_offsets.npy", offsets)
        np.save(target / "active.npy", np.asarray(store.active))
        np.save(target / "created.npy", np.asarray(store.created))
        np.save(target / "last_updated.npy", np.asarray(store.last_updated))
        columns = {}
        for path, column in store.columns.items():
            columns[path] = _write_column(target, f"c{_name(path)}", column)
        ranks = []
        for sort, rank in store.ranks.items():
            stem = f"r{_name(json.dumps(sort))}"
            np.save(target / f"{stem}.order.npy", np.asarray(rank.order))
            np.save(target / f"{stem}.dirty.npy", np.asarray(rank.dirty))
            ranks.append({"sort": list(sort), "stem": stem, "dirty_count": rank.dirty_count})
        meta = {
            "format": FORMAT, "bucket": store.bucket, "resource_type": store.resource_type,
            **store.seen.as_json(), "n": store.n, "columns": columns, "ranks": ranks,
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
        home = self._home(identity, store.bucket, store.resource_type)
        home.mkdir(parents=True, exist_ok=True)
        with (home / "catalogue.lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def uncatalogued(self) -> int:
        """How many stores' current snapshots (of any database here) have no catalogue yet."""
        missing = 0
        for home in self.root.glob("*/*"):
            try:
                current = home / (home / "current").read_text().strip()
                meta = json.loads((current / "meta.json").read_text())
            except (OSError, ValueError):
                continue
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
        except (OSError, ValueError) as exc:  # pruned meanwhile, or cut short: build instead
            log.warning("column snapshot %s not opened: %s", source, exc)
            return False
        return True

    def _read(self, store: Store, source: Path, meta: dict[str, Any]) -> None:
        def mapped(file: str) -> Any:
            # Copy-on-write: writes applied later stay in this process.
            return np.load(source / file, mmap_mode="c")

        n = int(meta["n"])
        uids = Uids(mapped("uids.npy"), mapped("uids_order.npy"), mapped("uids_sorted.npy"))
        search = SearchText(mapped("search.npy"), mapped("search_offsets.npy"))
        columns = {path: _open_column(source, path, stem) for path, stem in meta["columns"].items()}
        ranks = {
            tuple(r["sort"]): Rank(
                mapped(f"{r['stem']}.order.npy"),
                mapped(f"{r['stem']}.dirty.npy"),
                int(r["dirty_count"]),
            )
            for r in meta["ranks"]
        }
        if len(uids) != n or len(search) != n or any(len(c.codes) != n for c in columns.values()):
            raise ValueError("sizes differ")
        store.uids = uids
        store.search = search
        store.active = mapped("active.npy")
        store.created = mapped("created.npy")
        store.last_updated = mapped("last_updated.npy")
        store.columns = columns
        store.ranks = ranks
        if "catalogue" in meta:
            store.dormant = catalogue.read(meta["catalogue"], partial(_open_column, source), source)
        store.n = n
        store.seen = Reading.from_json(meta)
        store.loaded = True
