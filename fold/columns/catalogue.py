"""Columns of every document path, made once per store kept on disk and saved with its
snapshots, so that a rule on a field no rule has used before is answered without reading a
million documents again.

After a store kept on disk is read or opened without one, its catalogue is made (beside
requests, in a thread of the server: `index.Cataloguer`): every document of the store's
rows is read once and every path in them gets a column. Those columns are *dormant*: not
kept in step with writes (that would cost every write's refresh a read of every path) and
not in memory once saved (they are mapped from disk, and a process that never asks for
them never reads them). The first time a rule asks for a path, its dormant column is woken:
its codes are copied into a column of the store, and the rows written since the
catalogue's clock reading `seen` are read again for that path alone (an index range on
the records' version), after which the column is kept in step like any other. A path the
catalogue has no column of was in no document at `seen`: it wakes as an empty column the
same way.

The catalogue walks objects only, never into lists, and says nothing about a path it
cannot speak for (those are read from the database as before):
- a path with an all-digit step (`tags.0`): PostgreSQL reads it as an array index;
- a path that held an object in some document: its value is the object's JSON, which the
  catalogue does not keep;
- a path deeper than DEPTH steps.
Its rows are the store's rows when it was begun (a store only ever appends rows), so it
belongs to that store's snapshots; a store read from the database again gets a new one.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, select

from fold.columns.rowdata import Uids, grown
from fold.columns.store import DISPLAY, Column, Store
from fold.db.jsonsql import JsonValue
from fold.db.models import Record
from fold.records import clock

DEPTH = 6  # steps a catalogue path may have (the deepest any reader of paths takes)
# Past this share of the store written since the catalogue was made, reading the one path
# from every document is cheaper than reading the written rows back one by one.
STALE_SHARE = 0.25

log = logging.getLogger("fold.columns")

BATCH = 2_000  # documents read at a time
# A value's JSON key as `store.json_key` makes it, with the encoder made once.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

_STEP = re.compile(r"^[A-Za-z0-9_-]+$")
_INDEX_STEP = re.compile(r"^-?\d+$")


@dataclass
class Dormant:
    """A store's catalogue: a column per path as the documents stood at `seen`, for rows
    0 .. n-1 of the store. `objects`: paths that held an object (not spoken for)."""

    seen: clock.Reading
    n: int
    columns: dict[str, Column]  # made in memory, until saved
    objects: frozenset[str]
    files: dict[str, str] = field(default_factory=dict)  # on disk: path -> file stem
    entries: dict[str, Any] = field(default_factory=dict)  # on disk: what persist saved
    source: Path | None = None  # the snapshot holding the files (None: made in memory)
    # Opens a column from its files when it is woken, not before: a sleeping column costs
    # a process nothing.
    opener: Callable[[str, str, Any], Column] | None = None

    def paths(self) -> set[str]:
        return set(self.columns) | set(self.files)

    def column(self, path: str) -> Column | None:
        """The sleeping column of `path` (None: no document held it)."""
        found = self.columns.get(path)
        if found is None and path in self.files and self.opener is not None:
            found = self.opener(path, self.files[path], self.entries[path])
        return found

    def covers(self, path: str) -> bool:
        if path == DISPLAY or path in self.objects:
            return False
        steps = path.split(".")
        return len(steps) <= DEPTH and not any(_INDEX_STEP.match(s) for s in steps)


class _Path:
    """One path's column while the documents are read: for each batch, the rows holding a
    value and their codes. Entries are found by the value itself, in a table per type (1,
    1.0 and true are equal as Python keys, not as JSON), so a value's JSON key is made
    once per distinct value, not once per row; a batch's new values become entries
    together."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.keys: list[str] = [""]
        self.values: list[Any] = [None]
        self.owners: list[int] = []  # for list entries: (list entry, element entry) pairs
        self.elements: list[int] = []
        self.parts: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = []
        self.tables: dict[type, dict[Any, int]] = {}

    def add(self, rows: np.ndarray[Any, Any], values: list[Any], kinds: set[type]) -> None:
        codes = np.zeros(len(values), dtype=np.int32)
        for kind in kinds:
            at = None if len(kinds) == 1 else [i for i, v in enumerate(values) if type(v) is kind]
            some = values if at is None else [values[i] for i in at]
            found = self._lists(some) if kind is list else self._scalars(kind, some)
            if at is None:
                codes = found
            else:
                codes[at] = found
        held = codes != 0
        self.parts.append((rows[held], codes[held]))

    def _scalars(self, kind: type, values: list[Any]) -> np.ndarray[Any, Any]:
        """Codes of strings, numbers or booleans of one type (None among them: code 0)."""
        table = self.tables.setdefault(kind, {})
        new = set(values)
        new.difference_update(table)
        new.discard(None)
        if new:
            fresh = [v for v in dict.fromkeys(values) if v in new]  # first seen, first coded
            start = len(self.values)
            table.update(zip(fresh, range(start, start + len(fresh)), strict=True))
            self.values.extend(fresh)
            self.keys.extend(map(_encode, fresh))
        get = table.get
        return np.array([get(v, 0) for v in values], dtype=np.int32)

    def _lists(self, values: list[Any]) -> np.ndarray[Any, Any]:
        codes = np.zeros(len(values), dtype=np.int32)
        for i, value in enumerate(values):
            if value is not None:
                codes[i] = self._list(value)
        return codes

    def _list(self, value: list[Any]) -> int:
        try:
            key: Any = tuple(value)
            hash(key)
            table = self.tables.setdefault(list, {})
        except TypeError:  # objects or lists inside: found by its JSON
            key = _encode(value)
            table = self.tables.setdefault(object, {})
        code = table.get(key)
        if code is None:
            code = table[key] = self._new(_encode(value), value)
            for element in value:
                kind = type(element)
                if kind in (str, int, float, bool):
                    elements = self.tables.setdefault(kind, {})
                    found = elements.get(element)
                    if found is None:
                        found = elements[element] = self._new(_encode(element), element)
                    self.owners.append(code)
                    self.elements.append(found)
        return code

    def _new(self, key: str, value: Any) -> int:
        self.keys.append(key)
        self.values.append(value)
        return len(self.values) - 1

    def finish(self, n: int) -> Column:
        keys = self.keys
        column = Column(
            self.path, n, saved=lambda: keys, owners=self.owners, elements=self.elements
        )
        column.values = self.values
        for rows, codes in self.parts:
            column.codes[rows] = codes
        return column


NONE = type(None)


class Builder:
    """Reads the documents of a store's rows a batch at a time and one path at a time (a
    list of values per path, not a walk per document)."""

    def __init__(self, store: Store) -> None:
        """Made while the caller holds the store's lock: the catalogue is of the store's
        rows and clock reading as they are now."""
        self.seen = store.seen
        self.n = store.n
        self.generation = store.generation
        whole = store.uids.packed_all()
        self.uids = Uids(whole.packed, whole.order, whole.sorted)  # rows added later: not ours
        self.of_types = store.of_types()
        self.paths: dict[str, _Path] = {}
        self.objects: set[str] = set()
        self._steps: dict[str, bool] = {}

    def read(self, connection: Connection, idle: float = 0.0) -> None:
        """Every document of the store's rows. Beside requests, `idle`: after each batch,
        sleep that many times as long as the batch took, so that requests find the
        interpreter free for long stretches rather than waiting for it at every turn."""
        stmt = select(Record.uid, Record.data).where(self.of_types)
        options = {"stream_results": True, "yield_per": BATCH}
        started = time.perf_counter()
        for batch in connection.execute(stmt, execution_options=options).partitions():
            rows = self.uids.locate([r[0] for r in batch])
            # A row not among ours was written after our reading: it wakes from the database.
            kept = [i for i, row in enumerate(rows.tolist()) if row >= 0]
            self.add(rows[kept], [batch[i][1] for i in kept])
            if idle:
                time.sleep((time.perf_counter() - started) * idle)
                started = time.perf_counter()

    def add(self, rows: np.ndarray[Any, Any], documents: list[Any]) -> None:
        objects = [i for i, d in enumerate(documents) if type(d) is dict]
        if len(objects) < len(documents):
            rows, documents = rows[objects], [documents[i] for i in objects]
        self._level(rows, documents, "", 1)

    def _level(
        self, rows: np.ndarray[Any, Any], documents: list[dict[str, Any]], prefix: str, depth: int
    ) -> None:
        steps = self._steps
        for key in set().union(*documents):
            usable = steps.get(key)
            if usable is None:
                usable = steps[key] = _STEP.match(key) is not None
            if not usable:
                continue
            path = prefix + key
            values: list[Any] = [d.get(key) for d in documents]
            kinds = set(map(type, values))
            kinds.discard(NONE)
            if dict in kinds:
                self.objects.add(path)
                inner = [i for i, v in enumerate(values) if type(v) is dict]
                if depth < DEPTH:
                    self._level(rows[inner], [values[i] for i in inner], path + ".", depth + 1)
                continue
            if kinds:
                found = self.paths.get(path)
                if found is None:
                    found = self.paths[path] = _Path(path)
                found.add(rows, values, kinds)

    def finish(self) -> Dormant:
        columns = {
            path: built.finish(self.n)
            for path, built in self.paths.items()
            if path not in self.objects
        }
        return Dormant(self.seen, self.n, columns, frozenset(self.objects))


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
        woken = _woken(store, connection, dormant, path, since)
        if woken is not None:
            store.columns[path] = woken
    return [p for p in wanted if p not in store.columns]


def _woken(
    store: Store, connection: Connection, dormant: Dormant, path: str, since: Any
) -> Column | None:
    try:
        asleep = dormant.column(path)
    except (OSError, ValueError, KeyError) as exc:  # its files gone or cut short
        log.warning("column index: catalogue column %s of %s/%s not opened: %s", path,
                    store.bucket, store.resource_type, exc)  # fmt: skip
        return None  # read from the documents instead
    if asleep is not None and len(asleep.codes) != dormant.n:
        log.warning("column index: catalogue column %s of %s/%s cut short", path, store.bucket,
                    store.resource_type)  # fmt: skip
        return None  # read from the documents instead
    if asleep is None:
        column = Column(path, store.n)
    else:
        # Opened afresh for this wake (its entries and codes mapped, shared with other
        # processes; only the pages of rows written since become this process's own),
        # rows added since the catalogue included.
        column = asleep
        column.codes = grown(asleep.codes, store.n - dormant.n)
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


def write(dormant: Dormant, save: Callable[[str], tuple[str, Any]]) -> dict[str, Any]:
    """Save each sleeping column with `save` (which answers its file stem and what is
    said of its entries); answers what the snapshot's meta keeps of the catalogue."""
    saved = {path: save(path) for path in sorted(dormant.paths())}
    return {
        **dormant.seen.as_json(),
        "n": dormant.n,
        "files": {path: stem for path, (stem, _) in saved.items()},
        "entries": {path: entries for path, (_, entries) in saved.items()},
        "objects": sorted(dormant.objects),
    }


def read(meta: dict[str, Any], opener: Callable[[str, str, Any], Column], source: Path) -> Dormant:
    """The catalogue a snapshot's meta describes, its columns to be opened with `opener`
    from the snapshot at `source` when woken."""
    files: dict[str, str] = dict(meta["files"])
    entries: dict[str, Any] = dict(meta["entries"])
    if set(entries) != set(files):
        raise ValueError("catalogue entries differ from its files")
    seen = clock.Reading.from_json(meta)
    n = int(meta["n"])
    return Dormant(seen, n, {}, frozenset(meta["objects"]), files, entries, source, opener)
