"""Columns of every document path, made once from the store's first read of the database
and kept on disk with its snapshots, so that a rule on a field no rule has used before is
answered without reading a million documents again.

When a store is first read from the database (not opened from a snapshot), its documents
come with the same scan and every path in them gets a column: the catalogue. Those
columns are *dormant*: not kept in step with writes (that would cost every write a read of
every path) and not in memory once saved (they are mapped from disk, and a process that
never asks for them never reads them). The first time a rule asks for a path, its dormant
column is woken: its codes are copied into a column of the store, and the rows written
since the catalogue's clock reading `seen` are read again for that path alone (an index
range on the records' version), after which the column is kept in step like any other.
A path the catalogue has no column of was in no document at `seen`: it wakes as an empty
column the same way.

The catalogue walks objects only, never into lists, and says nothing about a path it
cannot speak for (those are read from the database as before):
- a path with an all-digit step (`tags.0`): PostgreSQL reads it as an array index;
- a path that held an object in some document: its value is the object's JSON, which the
  catalogue does not keep;
- a path deeper than DEPTH steps.
Its rows are the store's rows as it was read (a store only ever appends rows), so it belongs
to that store's snapshots and is made again whenever a store is read from the database.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, select

from fold.columns.store import DISPLAY, Column, Store, json_key
from fold.db.jsonsql import JsonValue
from fold.db.models import Record
from fold.records import clock

DEPTH = 6  # steps a catalogue path may have (the deepest any reader of paths takes)
# Past this share of the store written since the catalogue was made, reading the one path
# from every document is cheaper than reading the written rows back one by one.
STALE_SHARE = 0.25

_STEP = re.compile(r"^[A-Za-z0-9_-]+$")
_INDEX_STEP = re.compile(r"^-?\d+$")


@dataclass
class Dormant:
    """A store's catalogue: a column per path as the documents stood at `seen`, for rows
    0 .. n-1 of the store. `objects`: paths that held an object (not spoken for)."""

    seen: clock.Reading
    n: int
    columns: dict[str, Column]
    objects: frozenset[str]
    files: dict[str, str] = field(default_factory=dict)  # path -> file stem on disk
    source: Path | None = None  # the snapshot it is mapped from (None: made in memory)

    def covers(self, path: str) -> bool:
        if path == DISPLAY or path in self.objects:
            return False
        steps = path.split(".")
        return len(steps) <= DEPTH and not any(_INDEX_STEP.match(s) for s in steps)


class _Path:
    """One path's column as the documents are walked: rows and codes appended as found."""

    __slots__ = ("codes", "column", "floats", "ints", "rows", "strings")

    def __init__(self, path: str) -> None:
        self.column = Column(path, 0)
        self.rows = array("q")
        self.codes = array("i")
        # Entries found by the value itself: the JSON key is made once per distinct value.
        self.strings: dict[str, int] = {}
        self.ints: dict[int, int] = {}
        self.floats: dict[float, int] = {}

    def add(self, row: int, value: Any) -> None:
        kind = type(value)
        if kind is str:
            code = self.strings.get(value)
            if code is None:
                code = self.strings[value] = self.column.entry(json_key(value), value)
        elif kind is int:
            code = self.ints.get(value)
            if code is None:
                code = self.ints[value] = self.column.entry(json_key(value), value)
        elif kind is float and value == value:  # NaN never equals itself as a dict key
            code = self.floats.get(value)
            if code is None:
                code = self.floats[value] = self.column.entry(json_key(value), value)
        else:  # booleans, lists (and their elements' entries)
            key = json_key(value)
            found = self.column.keys.get(key)
            code = self.column.entry(key, value) if found is None else found
        self.rows.append(row)
        self.codes.append(code)


class Builder:
    """Walks the documents of a store's first read, in row order."""

    def __init__(self) -> None:
        self.paths: dict[str, _Path] = {}
        self.objects: set[str] = set()
        self.row = 0
        self._steps: dict[str, bool] = {}

    def add(self, documents: Iterable[Any]) -> None:
        for document in documents:
            if isinstance(document, dict):
                self._walk(document, "", 1)
            self.row += 1

    def _walk(self, document: dict[str, Any], prefix: str, depth: int) -> None:
        steps = self._steps
        for key, value in document.items():
            usable = steps.get(key)
            if usable is None:
                usable = steps[key] = _STEP.match(key) is not None
            if not usable or value is None:
                continue
            path = prefix + key
            if type(value) is dict:
                self.objects.add(path)
                if depth < DEPTH:
                    self._walk(value, path + ".", depth + 1)
                continue
            found = self.paths.get(path)
            if found is None:
                found = self.paths[path] = _Path(path)
            found.add(self.row, value)

    def finish(self, seen: clock.Reading) -> Dormant:
        """The catalogue, for documents read after the clock read `seen`."""
        n = self.row
        columns = {}
        for path, built in self.paths.items():
            if path in self.objects:
                continue
            column = built.column
            column.codes = np.zeros(n, dtype=np.int32)
            rows = np.frombuffer(built.rows, dtype=np.int64)
            column.codes[rows] = np.frombuffer(built.codes, dtype=np.int32)
            columns[path] = column
        return Dormant(seen, n, columns, frozenset(self.objects))


def wake(store: Store, connection: Connection, paths: Iterable[str]) -> list[str]:
    """Give the store a column for each of `paths` its catalogue speaks for, up to date;
    answers the paths it could not wake (to be read from the database)."""
    dormant = store.dormant
    wanted = [p for p in paths if p not in store.columns]
    if dormant is None or not wanted:
        return wanted
    covered = [p for p in wanted if dormant.covers(p)]
    if not covered:
        return wanted
    since = clock.changed_since(connection.dialect.name, dormant.seen)
    written = connection.scalar(select(func.count()).where(store.of_types(), since)) or 0
    if written > STALE_SHARE * max(store.n, 1):
        return wanted
    for path in covered:
        store.columns[path] = _woken(store, connection, dormant, path, since)
    return [p for p in wanted if p not in covered]


def _woken(store: Store, connection: Connection, dormant: Dormant, path: str, since: Any) -> Column:
    asleep = dormant.columns.get(path)
    if asleep is None:
        column = Column(path, store.n)
    else:
        column = Column(
            path,
            store.n,
            saved=asleep.keys_source(),
            owners=list(asleep.owners),
            elements=list(asleep.elements),
        )
        column.codes[: dormant.n] = asleep.codes[: dormant.n]
    reading = JsonValue(Record.data, path)
    rows = connection.execute(
        select(Record.uid, reading).where(store.of_types(), since),
        execution_options={"stream_results": True, "yield_per": 10_000},
    )
    for batch in rows.partitions():
        found = store.uids.locate([r[0] for r in batch])
        for index, row in zip(found.tolist(), batch, strict=True):
            # index < 0: written after the store's own reading; its refresh adds the row.
            if index >= 0:
                column.set_code(index, column.encode_text(row[1]))
    return column


# --- on disk, beside the store's snapshot (fold.columns.persist) ---------------------------


def write(dormant: Dormant, save: Callable[[str, Column], str]) -> dict[str, Any]:
    """Save each sleeping column with `save` (which answers its file stem); answers what
    the snapshot's meta keeps of the catalogue."""
    files = {path: save(path, column) for path, column in dormant.columns.items()}
    return {
        **dormant.seen.as_json(),
        "n": dormant.n,
        "files": files,
        "objects": sorted(dormant.objects),
    }


def read(meta: dict[str, Any], load: Callable[[str, str], Column], source: Path) -> Dormant:
    """The catalogue a snapshot's meta describes, its columns opened with `load` from the
    snapshot at `source`."""
    files: dict[str, str] = meta["files"]
    columns = {path: load(path, stem) for path, stem in files.items()}
    n = int(meta["n"])
    if any(len(c.codes) != n for c in columns.values()):
        raise ValueError("catalogue sizes differ")
    seen = clock.Reading.from_json(meta)
    return Dormant(seen, n, columns, frozenset(meta["objects"]), dict(files), source)
