"""One bucket's records of one type, held in memory as dictionary-encoded columns.

Each record is a row number. A column is the value at one document path for every row:
an int32 code per row into the column's entries (distinct JSON values; entry 0 is "no
value": missing or null). A column is built the first time a segment asks about its path,
from the database's own JSON text of that path (`db.jsonsql.JsonValue`), and kept in step
afterwards from the same reading: before every use the store reads the bucket's change
clock and applies the rows written since (`fold.records.clock`). It only reads: every
writer stamps the clock.

Entries are never removed while the store lives; a value no row holds any more is a
harmless extra entry.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from fold.db.jsonsql import JsonValue
from fold.db.models import Record
from fold.records import clock

STRINGS = np.dtypes.StringDType()
EXACT_INT = 2**53  # beyond this numpy's float64 would round what Python compares exactly
MAX_WORDS = 32  # search words whose row sets a store keeps

# Fold's own columns of a record, in the order `load` and `apply` take them.
OWN_COLUMNS = (
    Record.uid,
    Record.record_state,
    Record.created,
    Record.last_updated,
    Record.display_value,
    Record.search_text,
)

Mask = np.ndarray[Any, np.dtype[np.bool_]]
Codes = np.ndarray[Any, np.dtype[np.int32]]


def json_key(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


@dataclass
class Typed:
    """The entries of one kind, as numpy arrays for vectorised tests."""

    ids: np.ndarray[Any, np.dtype[np.int64]]
    values: list[Any]
    array: Any  # StringDType, float64 or bool array of `values`; None: test one by one
    exact: bool = True  # numbers: every value exactly representable as float64
    _folded: Any = None
    _lowered: Any = None

    @property
    def folded(self) -> Any:
        """Strings as `equals` sees them (rules.ops.fold)."""
        if self._folded is None:
            from fold.rules.ops import fold

            self._folded = np.array([fold(v) for v in self.values], dtype=STRINGS)
        return self._folded

    @property
    def lowered(self) -> Any:
        """Strings as `starts_with_case_insensitive` sees them."""
        if self._lowered is None:
            from fold.rules.ops import lower_ascii

            self._lowered = np.array([lower_ascii(v) for v in self.values], dtype=STRINGS)
        return self._lowered


def _strings(values: list[str]) -> Any:
    try:
        return np.array(values, dtype=STRINGS)
    except (UnicodeEncodeError, ValueError):  # lone surrogates: no UTF-8 for numpy
        return None


class Column:
    def __init__(self, path: str, size: int) -> None:
        self.path = path
        self.codes: Codes = np.zeros(size, dtype=np.int32)
        self.values: list[Any] = [None]
        self.keys: dict[str, int] = {}
        # For list entries: (list entry, element entry) pairs.
        self.owners: list[int] = []
        self.elements: list[int] = []
        self._derived: dict[str, Any] = {}
        self._derived_at = -1
        self._numbers: Any = None

    def entry(self, key: str, value: Any) -> int:
        code = self.keys.get(key)
        if code is None:
            code = len(self.values)
            self.values.append(value)
            self.keys[key] = code
            if isinstance(value, list):
                for element in value:
                    if isinstance(element, str | int | float):
                        element_code = self.entry(json_key(element), element)
                        self.owners.append(code)
                        self.elements.append(element_code)
        return code

    def encode_text(self, text: str | None) -> int:
        """The entry for a value as the database rendered it in JSON (None: missing)."""
        if text is None:
            return 0
        code = self.keys.get(text)
        if code is not None:
            return code
        value = json.loads(text)
        if value is None:
            return 0
        return self.entry(text, value)

    def encode_string(self, value: str) -> int:
        """For columns the database holds as text (display value): keyed apart from the
        JSON renderings, which never start with NUL."""
        key = "\x00" + value
        code = self.keys.get(key)
        return self.entry(key, value) if code is None else code

    def numbers(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Each row's value as a float where it is a number, NaN otherwise (for `near`);
        kept until a row's code changes."""
        if self._numbers is None or len(self._numbers) != len(self.codes):
            self._numbers = self.derived()["as_number"][self.codes]
        numbers: np.ndarray[Any, np.dtype[np.float64]] = self._numbers
        return numbers

    def set_code(self, row: int, code: int) -> None:
        if self.codes[row] != code:
            self.codes[row] = code
            self._numbers = None

    def derived(self) -> dict[str, Any]:
        """Per-kind arrays of the entries, rebuilt when entries have been added."""
        if self._derived_at == len(self.values):
            return self._derived
        by_kind: dict[str, tuple[list[int], list[Any]]] = {}
        for code, value in enumerate(self.values):
            if code == 0:
                continue
            ids, values = by_kind.setdefault(kind_of(value), ([], []))
            ids.append(code)
            values.append(value)
        out: dict[str, Any] = {}
        for kind, (ids, values) in by_kind.items():
            id_array = np.array(ids, dtype=np.int64)
            if kind == "string":
                out[kind] = Typed(id_array, values, _strings(values))
            elif kind == "number":
                exact = all(isinstance(v, float) or abs(v) <= EXACT_INT for v in values)
                out[kind] = Typed(
                    id_array, values, np.array([float(v) for v in values]), exact=exact
                )
            elif kind == "boolean":
                out[kind] = Typed(id_array, values, np.array(values, dtype=bool))
            else:
                out[kind] = Typed(id_array, values, None)
        numbers = np.full(len(self.values), np.nan)
        if "number" in out:
            numbers[out["number"].ids] = out["number"].array
        out["as_number"] = numbers
        out["owners"] = np.array(self.owners, dtype=np.int64)
        out["elements"] = np.array(self.elements, dtype=np.int64)
        self._derived = out
        self._derived_at = len(self.values)
        return out


def micros(value: Any) -> int:
    """A datetime (or the text SQLite keeps it as) as microseconds since 1970, naive UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    delta: timedelta = value - datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def micros_array(values: list[Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """As `micros`, for naive datetimes or SQLite's text for them, at numpy's speed."""
    try:
        return np.array(values, dtype="datetime64[us]").astype(np.int64)
    except (ValueError, TypeError):
        return np.array([micros(v) for v in values], dtype=np.int64)


@dataclass
class Rank:
    """Every row in the database's own order for one sort; rows written since are
    `dirty` and are ordered by the database again when a page includes them."""

    order: np.ndarray[Any, np.dtype[np.int64]]
    dirty: Mask
    dirty_count: int = 0


@dataclass
class Store:
    bucket: str
    resource_type: str
    n: int = 0
    seen: clock.Reading = clock.NEVER
    uids: list[str] = field(default_factory=list)
    row_of: dict[str, int] = field(default_factory=dict)
    active: Mask = field(default_factory=lambda: np.zeros(0, dtype=bool))
    created: np.ndarray[Any, np.dtype[np.int64]] = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )
    last_updated: np.ndarray[Any, np.dtype[np.int64]] = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )
    search: list[str] = field(default_factory=list)
    columns: dict[str, Column] = field(default_factory=dict)
    ranks: dict[tuple[str, ...], Rank] = field(default_factory=dict)
    words: OrderedDict[str, Mask] = field(default_factory=OrderedDict)
    loaded: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    _uid_column: Column | None = None

    # --- reading the database -------------------------------------------------------------

    def _rows(
        self,
        connection: Connection,
        columns: Sequence[Any],
        *,
        batch: int,
        since: clock.Reading | None = None,
    ) -> Iterator[Sequence[Any]]:
        """The type's rows, `batch` at a time: streamed (a server-side cursor on
        PostgreSQL), so a million rows never sit in the client's memory at once."""
        stmt = select(*columns).where(
            Record.bucket == self.bucket, Record.resource_type == self.resource_type
        )
        if since is not None:
            stmt = stmt.where(clock.changed_since(connection.dialect.name, since))
        # Options of this statement only: set on the connection they would outlive it.
        options = {"stream_results": True, "yield_per": batch}
        yield from connection.execute(stmt, execution_options=options).partitions()

    def load(self, connection: Connection) -> None:
        """Every row of the type, with Fold's own columns; document columns come later."""
        self.seen = clock.current(connection, self.bucket)
        display = Column("display_value", 0)
        active, created, updated, codes = [], [], [], []
        for batch in self._rows(connection, OWN_COLUMNS, batch=100_000):
            self.uids.extend(r[0] for r in batch)
            self.search.extend(r[5] for r in batch)
            active.append(np.array([r[1] == "active" for r in batch], dtype=bool))
            created.append(micros_array([r[2] for r in batch]))
            updated.append(micros_array([r[3] for r in batch]))
            codes.append(np.array([display.encode_string(r[4]) for r in batch], dtype=np.int32))
        self.n = len(self.uids)
        self.row_of = {uid: i for i, uid in enumerate(self.uids)}
        self.active = np.concatenate([np.zeros(0, dtype=bool), *active])
        self.created = np.concatenate([np.zeros(0, dtype=np.int64), *created])
        self.last_updated = np.concatenate([np.zeros(0, dtype=np.int64), *updated])
        display.codes = np.concatenate([np.zeros(0, dtype=np.int32), *codes])
        self.columns = {"display_value": display}
        self.loaded = True

    def ensure_columns(self, connection: Connection, paths: Iterable[str]) -> None:
        missing = [p for p in dict.fromkeys(paths) if p not in self.columns]
        if not missing:
            return
        fresh = {p: Column(p, self.n) for p in missing}
        row_of = self.row_of
        columns = [fresh[p] for p in missing]
        selected = [Record.uid, *[JsonValue(Record.data, p) for p in missing]]
        for batch in self._rows(connection, selected, batch=50_000):
            for row in batch:
                index = row_of.get(row[0])
                if index is None:
                    continue  # written after the store was loaded: the refresh adds it
                for position, column in enumerate(columns, start=1):
                    text = row[position]
                    if text is not None:
                        column.codes[index] = column.encode_text(text)
        self.columns.update(fresh)

    def refresh(self, connection: Connection) -> None:
        """Apply every row written since the clock value this store last saw."""
        now = clock.current(connection, self.bucket)
        if not clock.may_have_changed(self.seen, now):
            return
        # Document paths read as `ensure_columns` reads them: one value, one entry.
        paths = [p for p in self.columns if p != "display_value"]
        selected = [*OWN_COLUMNS, *[JsonValue(Record.data, p) for p in paths]]
        # A batch at a time: after a job that rewrote every record, the change is all of
        # them, documents included.
        for batch in self._rows(connection, selected, batch=10_000, since=self.seen):
            self.apply(batch, paths)
        self.seen = now

    def apply(self, rows: Sequence[Sequence[Any]], paths: Sequence[str]) -> None:
        """Rows of OWN_COLUMNS followed by the JSON text at each of `paths`."""
        new = [r for r in rows if r[0] not in self.row_of]
        if new:
            self._append(len(new))
            for offset, row in enumerate(new):
                index = self.n - len(new) + offset
                self.uids.append(row[0])
                self.row_of[row[0]] = index
                self.search.append("")
            self._uid_column = None
        sort_paths = {p.lstrip("-") for key in self.ranks for p in key}
        display_column = self.columns["display_value"]
        document_columns = [self.columns[p] for p in paths]
        for row in rows:
            uid, state, created, updated, display, search = row[:6]
            index = self.row_of[uid]
            self.active[index] = state == "active"
            self.created[index] = micros(created)
            self.last_updated[index] = micros(updated)
            self.search[index] = search
            for word, holders in self.words.items():
                holders[index] = word in search
            resorted = index >= self.n - len(new)
            codes = [display_column.encode_string(display)]
            codes.extend(
                column.encode_text(text)
                for column, text in zip(document_columns, row[6:], strict=True)
            )
            for column, code in zip((display_column, *document_columns), codes, strict=True):
                old = column.codes[index]
                column.set_code(index, code)
                if column.path in sort_paths and old != code:
                    resorted = resorted or json_key(column.values[old]) != json_key(
                        column.values[code]
                    )
            if resorted or "last_updated" in sort_paths:
                for rank in self.ranks.values():
                    if not rank.dirty[index]:
                        rank.dirty[index] = True
                        rank.dirty_count += 1

    def _append(self, count: int) -> None:
        size = self.n + count
        self.active = np.concatenate([self.active, np.zeros(count, dtype=bool)])
        self.created = np.concatenate([self.created, np.zeros(count, dtype=np.int64)])
        self.last_updated = np.concatenate([self.last_updated, np.zeros(count, dtype=np.int64)])
        for column in self.columns.values():
            column.codes = np.concatenate([column.codes, np.zeros(count, dtype=np.int32)])
        for word in self.words:
            self.words[word] = np.concatenate([self.words[word], np.zeros(count, dtype=bool)])
        for rank in self.ranks.values():
            rank.dirty = np.concatenate([rank.dirty, np.ones(count, dtype=bool)])
            rank.dirty_count += count
        self.n = size

    def uid_column(self) -> Column:
        """`uid` as a column (one entry per row), for rules other than equality on it."""
        if self._uid_column is None:
            column = Column("uid", self.n)
            column.values = [None, *self.uids]
            column.keys = {}
            column.codes = np.arange(1, self.n + 1, dtype=np.int32)
            self._uid_column = column
        return self._uid_column

    def word(self, word: str) -> Mask:
        """Which rows' search text holds `word`: worked out on first use, then kept in
        step with writes (the last MAX_WORDS words searched for)."""
        holders = self.words.get(word)
        if holders is None:
            holders = np.fromiter((word in t for t in self.search), dtype=bool, count=self.n)
            self.words[word] = holders
            while len(self.words) > MAX_WORDS:
                self.words.popitem(last=False)
        self.words.move_to_end(word)
        return holders

    def rows_of(self, uids: Iterable[str]) -> np.ndarray[Any, np.dtype[np.int64]]:
        row_of = self.row_of
        found = [row_of[u] for u in uids if u in row_of]
        return np.array(found, dtype=np.int64)

    def mask_of(self, uids: Iterable[str]) -> Mask:
        mask = np.zeros(self.n, dtype=bool)
        mask[self.rows_of(uids)] = True
        return mask
