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
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, and_, or_, select

from fold.columns.rowdata import SearchText, Uids, grown
from fold.db.jsonsql import JsonValue
from fold.db.models import Record
from fold.records import clock

if TYPE_CHECKING:
    from fold.columns.catalogue import Dormant

STRINGS = np.dtypes.StringDType()
EXACT_INT = 2**53  # beyond this numpy's float64 would round what Python compares exactly
MAX_WORDS = 32  # search words whose row sets a store keeps
FEW_CHANGED = 1_000  # changed rows a catch-up reads in one query, not streamed

# Fold's own columns of a record, in the order `load` and `apply` take them.
OWN_COLUMNS = (
    Record.uid,
    Record.record_state,
    Record.created,
    Record.last_updated,
    Record.search_text,
)
# Fold's own column that is dictionary-encoded like a document path, built when a rule or
# a sort first asks for it (most never do, and it has a distinct value per record).
DISPLAY = "display_value"

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


class Typed:
    """The entries of one kind, as numpy arrays for vectorised tests. `values` (the entries'
    Python values, for tests numpy cannot answer exactly) are made when first asked for,
    by `source`, when not given."""

    def __init__(
        self,
        ids: np.ndarray[Any, np.dtype[np.int64]],
        values: list[Any] | None,
        array: Any,  # text (see `_strings`), float64 or bool array of `values`; None: one by one
        exact: bool = True,  # numbers: every value exactly representable as float64
        *,
        source: Callable[[], list[Any]] | None = None,
        folded: Any = None,
        lowered: Any = None,
    ) -> None:
        self.ids = ids
        self._values = values
        self._source = source
        self.array = array
        self.exact = exact
        self._folded = folded
        self._lowered = lowered

    @property
    def values(self) -> list[Any]:
        if self._values is None:
            assert self._source is not None
            self._values = self._source()
        return self._values

    @property
    def made(self) -> bool:
        """Whether the values are at hand (not to be made from the saved keys)."""
        return self._values is not None

    @property
    def folded(self) -> Any:
        """Strings as `equals` sees them (rules.ops.fold)."""
        if self._folded is None:
            if _fixed(self.array):
                self._folded = _lower_ascii(np.strings.strip(self.array, " "))
            else:
                from fold.rules.ops import fold

                self._folded = np.array([fold(v) for v in self.values], dtype=STRINGS)
        return self._folded

    @property
    def lowered(self) -> Any:
        """Strings as `starts_with_case_insensitive` sees them."""
        if self._lowered is None:
            if _fixed(self.array):
                self._lowered = _lower_ascii(self.array)
            else:
                from fold.rules.ops import lower_ascii

                self._lowered = np.array([lower_ascii(v) for v in self.values], dtype=STRINGS)
        return self._lowered


# Fixed-width text is used while its padding costs at most this many times its characters.
MAX_PADDING = 4


def _fixed(array: Any) -> bool:
    """Whether a text array is fixed-width (numpy "U": one code point in 4 bytes)."""
    return array is not None and array.dtype.kind == "U"


def _strings(values: list[str]) -> Any:
    """Text entries as numpy holds them for vectorised tests: fixed-width ("U", code points,
    so it can be saved and memory-mapped) unless a value holds NUL (numpy takes trailing
    NULs for padding) or one long value would pad every other; else numpy's variable-width
    strings; None when numpy cannot hold them (lone surrogates have no UTF-8)."""
    width = max(map(len, values), default=0)
    chars = sum(map(len, values))
    if width * len(values) <= MAX_PADDING * chars + 4096 and not any("\x00" in v for v in values):
        return np.array(values, dtype=f"U{max(width, 1)}")
    try:
        return np.array(values, dtype=STRINGS)
    except (UnicodeEncodeError, ValueError):  # lone surrogates: no UTF-8 for numpy
        return None


def _lower_ascii(array: Any) -> Any:
    """`rules.ops.lower_ascii` of every string of a fixed-width array, at numpy's speed."""
    points = np.ascontiguousarray(array).view(np.uint32)
    upper = (points >= ord("A")) & (points <= ord("Z"))
    return (points + upper.astype(np.uint32) * 32).view(array.dtype)


def values_of(keys: Sequence[str]) -> list[Any]:
    """The entries' values from their keys in code order (entry 0 is no value): JSON text,
    or NUL and the text itself for columns the database holds as text."""
    rest = keys[1:]
    plain = sum(1 for k in rest if not k.startswith("\x00"))
    if plain == len(rest):  # JSON only: parsed in one go
        return [None, *json.loads("[" + ",".join(rest) + "]")]
    if plain == 0:
        return [None, *(k[1:] for k in rest)]
    return [None, *(json.loads(k) if not k.startswith("\x00") else k[1:] for k in rest)]


class Column:
    """One path's column. Its entries' values and the map from their keys to codes are
    made when first needed: from what was read, or (for a column opened from disk) from
    the saved keys — a process that only counts never makes the key map."""

    def __init__(
        self,
        path: str,
        size: int,
        saved: Callable[[], list[str]] | None = None,
        owners: list[int] | None = None,
        elements: list[int] | None = None,
    ) -> None:
        self.path = path
        self.codes: Codes = np.zeros(size, dtype=np.int32)
        self._saved = saved
        self._saved_keys: list[str] | None = None
        self._values: list[Any] | None = None if saved else [None]
        self._keys: dict[str, int] | None = None if saved else {}
        # For list entries: (list entry, element entry) pairs.
        self.owners: list[int] = owners or []
        self.elements: list[int] = elements or []
        self._derived: dict[str, Any] = {}
        self._derived_at = -1
        self._joined_numbers: tuple[int, Any] | None = None
        self._pairs: tuple[Any, Any] | None = None
        # Opened from disk: how many entries were saved, and their arrays (`use_saved`).
        self._mapped_count = 0
        self._mapped: tuple[dict[str, Any], dict[str, bool]] | None = None
        self._mapped_arrays: dict[str, Any] | None = None
        self._tail: dict[str, Any] = {}
        self._tail_at = -1
        # Opened from disk with its key index (`use_key_index`): entries added since, and
        # their keys, while the values and the key map have not been made.
        self._index: tuple[Any, Any, Any] | None = None
        self._added: list[Any] = []
        self._added_keys: dict[str, int] = {}

    def _read_saved(self) -> list[str]:
        if self._saved_keys is None:
            assert self._saved is not None
            self._saved_keys = self._saved()
        found = self._saved_keys
        if self._values is not None and self._keys is not None:
            self._saved = self._saved_keys = None  # both made: the saved keys are done with
        return found

    @property
    def values(self) -> list[Any]:
        if self._values is None:
            self._values = [*values_of(self._read_saved()), *self._added]
            self._added = []
            self._read_saved()
        return self._values

    @values.setter
    def values(self, values: list[Any]) -> None:
        self._values = values

    @property
    def keys(self) -> dict[str, int]:
        if self._keys is None:
            self._keys = {k: code for code, k in enumerate(self._read_saved()) if code}
            self._keys.update(self._added_keys)
            self._added_keys = {}
            self._read_saved()
        return self._keys

    @keys.setter
    def keys(self, keys: dict[str, int]) -> None:
        self._keys = keys

    def value_of(self, code: int) -> Any:
        """One entry's value (its key parsed alone when the values have not been made)."""
        if self._values is not None:
            return self._values[code]
        return self.values_at([code])[0]

    def values_at(self, codes: list[int]) -> list[Any]:
        """The values of some entries, parsing only their keys when the values have not
        been made (the keys are read again, not kept)."""
        if self._values is not None or not self._mapped_count:
            values = self.values
            return [values[i] for i in codes]
        keys = self._saved_key_list()
        saved = [c for c in codes if 0 < c < self._mapped_count]
        parsed = dict(zip(saved, values_of(["", *(str(keys[i]) for i in saved)])[1:], strict=True))
        parsed[0] = None
        first = self._mapped_count
        return [parsed[c] if c < first else self._added[c - first] for c in codes]

    def _saved_key_list(self) -> Any:
        """The saved entries' keys in code order: the mapped key array, or the saved list
        (read again unless kept)."""
        if self._index is not None:
            return self._index[0]
        if self._saved_keys is not None:
            return self._saved_keys
        assert self._saved is not None
        return self._saved()

    def key_list(self) -> list[str]:
        """Every entry's key in code order (entry 0: "")."""
        if self._keys is None:
            saved = self._saved_key_list()
            listed: list[str] = saved.tolist() if isinstance(saved, np.ndarray) else saved
            if not self._added_keys:
                return listed
            out = [*listed, *[""] * len(self._added_keys)]
        else:
            out = [""] * self.entry_count()
        for key, code in (self._keys or self._added_keys).items():
            out[code] = key
        return out

    def code_of(self, key: str) -> int | None:
        """The entry of a key, if there is one: by the saved key index (a binary search)
        while the key map has not been made, so that applying a write makes neither it
        nor the values."""
        if self._keys is not None or self._index is None:
            return self.keys.get(key)
        code = self._added_keys.get(key)
        return _find(self._index, key) if code is None else code

    def entry(self, key: str, value: Any) -> int:
        code = self.code_of(key)
        if code is None:
            code = self.entry_count()
            if self._values is not None:
                self._values.append(value)
            else:
                self._added.append(value)
            if self._keys is not None:
                self._keys[key] = code
            else:
                self._added_keys[key] = code
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
        code = self.code_of(text)
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
        code = self.code_of(key)
        return self.entry(key, value) if code is None else code

    def entry_numbers(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Each entry's value as a float where it is a number, NaN otherwise: a row's is
        `entry_numbers()[codes[row]]`. For `near` and related sums, which gather only the
        rows they look at: a float per row, kept, was 8 MB a million rows in every
        process."""
        parts = self.derived_parts()
        if len(parts) == 1:
            single: np.ndarray[Any, np.dtype[np.float64]] = parts[0]["as_number"]
            return single
        size = self.entry_count()
        if self._joined_numbers is None or self._joined_numbers[0] != size:
            joined = np.concatenate([p["as_number"] for p in parts])
            self._joined_numbers = (size, joined)
        return self._joined_numbers[1]

    def set_code(self, row: int, code: int) -> None:
        if self.codes[row] != code:
            self.codes[row] = code

    def derived(self) -> dict[str, Any]:
        """Per-kind arrays of every entry, rebuilt when entries have been added."""
        if self._derived_at == self.entry_count():
            return self._derived
        if self._mapped is not None and self._mapped_count == self.entry_count():
            return self._mapped_part()
        self._derived = _derive(self, 0, self.values)
        self._derived["owners"] = np.array(self.owners, dtype=np.int64)
        self._derived["elements"] = np.array(self.elements, dtype=np.int64)
        self._derived_at = len(self.values)
        return self._derived

    def list_elements(self) -> tuple[Any, Any]:
        """The (list entry, element entry) pairs as two arrays."""
        if self._pairs is None or len(self._pairs[0]) != len(self.owners):
            self._pairs = (
                np.array(self.owners, dtype=np.int64),
                np.array(self.elements, dtype=np.int64),
            )
        return self._pairs

    # --- entries' arrays saved with the column (fold.columns.persist) ---------------------

    def entry_count(self) -> int:
        """How many entries (entry 0 included), without making their values."""
        if self._values is None and self._mapped_count:
            return self._mapped_count + len(self._added)
        return len(self.values)

    def use_saved(self, count: int, arrays: dict[str, Any] | None, exact: dict[str, bool]) -> None:
        """A column opened from disk: `count` entries, and (unless None) the per-kind
        arrays of all of them as saved (`mapped_entries` says how), so that a process that
        only tests the column never makes its values."""
        self._mapped_count = count
        self._mapped = None if arrays is None else (arrays, exact)

    def saved_arrays(self) -> dict[str, Any] | None:
        """The per-kind arrays to save beside the column's keys: every entry's, as plain
        numpy arrays that can be memory-mapped; None when some cannot be (text numpy holds
        only in its variable-width strings), and a process opening it makes them again."""
        parts = self.derived_parts()
        derived = (parts[0] if len(parts) == 1 else _merged(parts)) or self.derived()
        out: dict[str, Any] = {"as_number": derived["as_number"]}
        for kind in KINDS:
            typed = derived.get(kind)
            if typed is None:
                continue
            if kind == "string" and not _fixed(typed.array):
                return None
            out[kind] = typed
        return out

    def derived_parts(self) -> list[dict[str, Any]]:
        """The per-kind arrays in parts, each for its own entries: those saved with the
        column (memory-mapped, shared with every process that opened it) and those of
        entries added since (this process's own)."""
        if self._mapped is None:
            return [self.derived()]
        base = self._mapped_part()
        size = self.entry_count()
        if size == self._mapped_count:
            return [base]
        if self._tail_at != size:
            added = self._added if self._values is None else self._values[self._mapped_count :]
            self._tail = _derive(self, self._mapped_count, added)
            self._tail_at = size
        return [base, self._tail]

    def _mapped_part(self) -> dict[str, Any]:
        if self._mapped_arrays is None:
            assert self._mapped is not None
            self._mapped_arrays = mapped_entries(self, *self._mapped)
        return self._mapped_arrays

    def use_key_index(self, keys: Any, ordered: Any, codes: Any) -> None:
        """A column opened from disk with its saved keys as fixed-width arrays: in code
        order, sorted, and the code of each sorted key (`key_index`)."""
        self._index = (keys, ordered, codes)

    def key_index(self) -> tuple[Any, Any, Any] | None:
        """The keys as `use_key_index` takes them, to save; None when numpy cannot hold
        them exactly (a key ending in NUL, or one long key that would pad every other)."""
        if self._index is not None and not self._added_keys and self._keys is None:
            return self._index
        keys = self.key_list()
        width = max(map(len, keys), default=0)
        if width * len(keys) > MAX_PADDING * sum(map(len, keys)) + 4096:
            return None
        if any(k.endswith("\x00") for k in keys):
            return None
        array = np.array(keys, dtype=f"U{max(width, 1)}")
        codes = np.argsort(array[1:], kind="stable") + 1
        return array, array[codes], codes


def _merged(parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The mapped entries' arrays and those of entries added since as one (for saving,
    without making the values); None when some text is not fixed-width."""
    out: dict[str, Any] = {"as_number": np.concatenate([p["as_number"] for p in parts])}
    for kind in KINDS:
        found = [p[kind] for p in parts if kind in p]
        if not found:
            continue
        ids = np.concatenate([t.ids for t in found])
        arrays = [t.array for t in found]
        if kind == "string" and not all(_fixed(a) for a in arrays):
            return None
        if all(a is None for a in arrays):
            out[kind] = Typed(ids, None, None)
            continue
        exact = all(t.exact for t in found)
        if kind != "string":
            out[kind] = Typed(ids, None, np.concatenate(arrays), exact=exact)
            continue
        folded = np.concatenate([t.folded for t in found])
        lowered = np.concatenate([t.lowered for t in found])
        out[kind] = Typed(ids, None, np.concatenate(arrays), folded=folded, lowered=lowered)
    return out


def _find(index: tuple[Any, Any, Any], key: str) -> int | None:
    """A key's code by binary search of the sorted saved keys; None when not saved."""
    _, ordered, codes = index
    # Numpy would take a trailing NUL for padding, and cut a key longer than its width.
    if not len(ordered) or key.endswith("\x00") or len(key) > ordered.dtype.itemsize // 4:
        return None
    at = int(np.searchsorted(ordered, key))
    if at < len(ordered) and str(ordered[at]) == key:
        return int(codes[at])
    return None


# Every kind of entry, in the order `derived` keeps them.
KINDS = ("string", "number", "boolean", "list", "object")


def _derive(column: Column, first: int, values: list[Any]) -> dict[str, Any]:
    """The per-kind arrays of the entries from code `first` on, whose values are `values`."""
    by_kind: dict[str, tuple[list[int], list[Any]]] = {}
    for code, value in enumerate(values, start=first):
        if code == 0:
            continue
        ids, kind_values = by_kind.setdefault(kind_of(value), ([], []))
        ids.append(code)
        kind_values.append(value)
    out: dict[str, Any] = {}
    for kind, (ids, kind_values) in by_kind.items():
        id_array = np.array(ids, dtype=np.int64)
        if kind == "string":
            out[kind] = Typed(id_array, kind_values, _strings(kind_values))
        elif kind == "number":
            exact = all(isinstance(v, float) or abs(v) <= EXACT_INT for v in kind_values)
            floats = np.array([float(v) for v in kind_values])
            out[kind] = Typed(id_array, kind_values, floats, exact=exact)
        elif kind == "boolean":
            out[kind] = Typed(id_array, kind_values, np.array(kind_values, dtype=bool))
        else:
            out[kind] = Typed(id_array, kind_values, None)
    numbers = np.full(len(values), np.nan)
    if "number" in out:
        numbers[out["number"].ids - first] = out["number"].array
    out["as_number"] = numbers
    return out


def mapped_entries(
    column: Column, arrays: dict[str, Any], exact: dict[str, bool]
) -> dict[str, Any]:
    """`derived` of a column opened from disk, from its saved arrays (kind -> ids, and
    "<kind>.array", "<kind>.folded", "<kind>.lowered" where saved; "as_number"). Values
    are made only for a test numpy cannot answer: text from its own array (it holds no
    NUL, so exactly the strings), the rest from the column's saved keys."""
    out: dict[str, Any] = {"as_number": arrays["as_number"]}
    for kind in KINDS:
        ids = arrays.get(kind)
        if ids is None:
            continue
        array = arrays.get(f"{kind}.array")
        # (the column by weak reference: it holds these, and a cycle would outlive it)
        source = partial(_values_at, weakref.ref(column), ids)
        if kind == "string" and array is not None:
            source = array.tolist
        out[kind] = Typed(
            ids,
            None,
            array,
            exact=exact.get(kind, True),
            source=source,
            folded=arrays.get(f"{kind}.folded"),
            lowered=arrays.get(f"{kind}.lowered"),
        )
    return out


def _values_at(column: Callable[[], Column | None], ids: Any) -> list[Any]:
    held = column()
    assert held is not None
    return held.values_at(ids.tolist())


def micros(value: Any) -> int:
    """A datetime (or the text SQLite keeps it as) as microseconds since 1970, naive UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    delta: timedelta = value - datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


def micros_array(values: list[Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """As `micros`, for naive datetimes or SQLite's text for them, many at once. (Numpy's
    own conversion of a datetime object costs four times the subtraction.)"""
    try:
        if values and isinstance(values[0], str):
            return np.array(values, dtype="datetime64[us]").astype(np.int64)
        count = len(values)
        return np.fromiter(((v - _EPOCH) // _MICROSECOND for v in values), np.int64, count)
    except (ValueError, TypeError):  # an aware datetime, or text numpy does not read
        return np.array([micros(v) for v in values], dtype=np.int64)


def _encoded(column: Column, texts: list[Any]) -> Codes:
    """The codes of a batch of one column's readings, each distinct reading encoded once
    (in order of first appearance, so entries get the codes a row-by-row pass gives)."""
    encode = column.encode_string if column.path == DISPLAY else column.encode_text
    code_of = {t: (0 if t is None else encode(t)) for t in dict.fromkeys(texts)}
    return np.array([code_of[t] for t in texts], dtype=np.int32)


@dataclass
class Rank:
    """Every row in the database's own order for one sort; rows written since are
    `dirty` and are ordered by the database again when a page includes them."""

    order: np.ndarray[Any, np.dtype[np.int64]]
    dirty: Mask
    dirty_count: int = 0


def _reading(path: str) -> Any:
    """What the database reads for a column: the display value, or a path's JSON text."""
    return Record.display_value if path == DISPLAY else JsonValue(Record.data, path)


@dataclass
class Store:
    """One bucket's records of one type — or of several (`types`: a contact segment's
    people and organisations, under the name `resource_type`)."""

    bucket: str
    resource_type: str
    types: tuple[str, ...] = ()
    n: int = 0
    seen: clock.Reading = clock.NEVER
    uids: Uids = field(default_factory=Uids)
    active: Mask = field(default_factory=lambda: np.zeros(0, dtype=bool))
    created: np.ndarray[Any, np.dtype[np.int64]] = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )
    last_updated: np.ndarray[Any, np.dtype[np.int64]] = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )
    search: SearchText = field(default_factory=SearchText)
    columns: dict[str, Column] = field(default_factory=dict)
    ranks: dict[tuple[str, ...], Rank] = field(default_factory=dict)
    words: OrderedDict[str, Mask] = field(default_factory=OrderedDict)
    loaded: bool = False
    dormant: Dormant | None = None  # columns of every path, asleep (fold.columns.catalogue)
    # The snapshot its rows are mapped from (fold.columns.persist), and the rows that
    # snapshot has room for: past them, the store's per-row arrays are this process's own.
    snapshot: str | None = None
    room: int = 0
    share_after: float = 0.0  # (time.monotonic) when rows of its own may be shared next
    # Counts the times the store was filled afresh (its rows may be in another order).
    generation: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _uid_column: Column | None = None
    _changes_memo: tuple[tuple[tuple[str, ...], str], clock.Changes] | None = None

    def __post_init__(self) -> None:
        self.types = self.types or (self.resource_type,)

    def take(self, other: Store) -> None:
        """Hold what `other` (of the same bucket and types) holds instead of what this holds:
        its rows may be in another order, so nothing row-numbered of this one is kept."""
        kept = ("bucket", "resource_type", "types", "lock", "generation", "share_after")
        for each in fields(self):
            if each.name not in kept:
                setattr(self, each.name, getattr(other, each.name))
        self.generation += 1

    @property
    def mixed(self) -> bool:
        """Whether rows are of more than one type (a row's uid does not say which)."""
        return len(self.types) > 1

    def of_types(self) -> Any:
        """The condition selecting this store's records."""
        return and_(Record.bucket == self.bucket, Record.resource_type.in_(self.types))

    # --- reading the database -------------------------------------------------------------

    def _rows(
        self,
        connection: Connection,
        columns: Sequence[Any],
        *,
        batch: int,
        since: clock.Reading | None = None,
        where: Any = None,
    ) -> Iterator[Sequence[Any]]:
        """The type's rows, `batch` at a time: streamed (a server-side cursor on
        PostgreSQL), so a million rows never sit in the client's memory at once."""
        stmt = select(*columns).where(self.of_types())
        if since is not None:
            stmt = stmt.where(clock.changed_since(connection.dialect.name, since))
        if where is not None:
            stmt = stmt.where(where)
        # Options of this statement only: set on the connection they would outlive it.
        options = {"stream_results": True, "yield_per": batch}
        yield from connection.execute(stmt, execution_options=options).partitions()

    def load(self, connection: Connection) -> None:
        """Every row of the type, with Fold's own columns; document columns come later."""
        self.seen = clock.current(connection, self.bucket)
        uids: list[str] = []
        search: list[str] = []
        active, created, updated = [], [], []
        for batch in self._rows(connection, OWN_COLUMNS, batch=100_000):
            uids.extend(r[0] for r in batch)
            search.extend(r[4] for r in batch)
            active.append(np.array([r[1] == "active" for r in batch], dtype=bool))
            created.append(micros_array([r[2] for r in batch]))
            updated.append(micros_array([r[3] for r in batch]))
        self.n = len(uids)
        self.uids = Uids.of(uids)
        self.search = SearchText.of(search)
        self.active = np.concatenate([np.zeros(0, dtype=bool), *active])
        self.created = np.concatenate([np.zeros(0, dtype=np.int64), *created])
        self.last_updated = np.concatenate([np.zeros(0, dtype=np.int64), *updated])
        self.columns = {}
        self.loaded = True

    def ensure_columns(self, connection: Connection, paths: Iterable[str]) -> None:
        missing = [p for p in dict.fromkeys(paths) if p not in self.columns]
        if not missing:
            return
        fresh = {p: Column(p, self.n) for p in missing}
        columns = [fresh[p] for p in missing]
        readings = [_reading(p) for p in missing]
        # Only rows holding a value at some path: a path few records have (or none yet)
        # reads those few.
        held = or_(*[r.is_not(None) for r in readings])
        for batch in self._rows(connection, [Record.uid, *readings], batch=50_000, where=held):
            rows = self.uids.locate([r[0] for r in batch])
            for position, column in enumerate(columns, start=1):
                encode = column.encode_string if column.path == DISPLAY else column.encode_text
                for index, row in zip(rows.tolist(), batch, strict=True):
                    # index < 0: written after the store was loaded; the refresh adds it.
                    if index >= 0 and row[position] is not None:
                        column.codes[index] = encode(row[position])
        self.columns.update(fresh)

    def refresh(self, connection: Connection) -> int:
        """Apply every row written since the clock value this store last saw; how many."""
        applied = 0
        # Paths read as `ensure_columns` reads them: one value, one entry.
        paths = tuple(self.columns)
        # Commonly a few rows or none: read with the clock, in one round trip (a streamed
        # read costs three more on PostgreSQL: declare, fetch, close).
        changes = self._changes(paths, connection.dialect.name)
        now, few = changes.read(connection, self.bucket, self.seen)
        if not clock.may_have_changed(self.seen, now):
            return 0
        if len(few) <= FEW_CHANGED:
            if few:
                self.apply(few, paths)
            self.seen = now
            return len(few)
        # Else a batch at a time: after a job that rewrote every record, the change is all
        # of them, documents included.
        selected = [*OWN_COLUMNS, *[_reading(p) for p in paths]]
        for batch in self._rows(connection, selected, batch=10_000, since=self.seen):
            self.apply(batch, paths)
            applied += len(batch)
        self.seen = now
        return applied

    def _changes(self, paths: tuple[str, ...], dialect: str) -> clock.Changes:
        """The catch-up's statement for these paths, built once while they stay the same."""
        memo = self._changes_memo
        if memo is None or memo[0] != (paths, dialect):
            selected = [*OWN_COLUMNS, *[_reading(p) for p in paths]]
            rows = (
                select(*selected)
                .where(self.of_types(), clock.changed_since_bound(dialect))
                .limit(FEW_CHANGED + 1)
            )
            memo = self._changes_memo = ((paths, dialect), clock.Changes.of(dialect, rows))
        return memo[1]

    def apply(self, rows: Sequence[Sequence[Any]], paths: Sequence[str]) -> None:
        """Rows of OWN_COLUMNS followed by what `_reading` reads for each of `paths`.

        A batch at a time, not a row at a time: a job that rewrote a million records is
        caught up here, and per row it cost about 30 µs in Python (each value looked up
        alone, each search text decoded to compare it)."""
        if not rows:
            return
        found = self.uids.locate([r[0] for r in rows])
        new = [r[0] for r, at in zip(rows, found.tolist(), strict=True) if at < 0]
        first = self.n  # rows from here on are new: not in any sort's order yet
        if new:
            self._append(len(new))
            self.uids.extend(new)
            self._uid_column = None
            found = np.where(found >= 0, found, self.uids.locate([r[0] for r in rows]))
        # A row appears once in a reading (its current version), so a batch's rows are
        # distinct: assigning by the array of their row numbers is the loop it replaces.
        self.active[found] = np.array([r[1] == "active" for r in rows], dtype=bool)
        self.created[found] = micros_array([r[2] for r in rows])
        self.last_updated[found] = micros_array([r[3] for r in rows])
        texts = [r[4] for r in rows]
        self.search.set_many(found, texts)
        for word, holders in self.words.items():
            holders[found] = np.array([word in t for t in texts], dtype=bool)
        sort_paths = {p.lstrip("-") for key in self.ranks for p in key}
        resorted = found >= first
        for position, path in enumerate(paths, start=5):
            column = self.columns[path]
            codes = _encoded(column, [r[position] for r in rows])
            old = column.codes[found]
            differ = (old != codes).nonzero()[0]
            if not len(differ):
                continue
            # Only where they differ: a mapped snapshot's pages stay shared until written.
            column.codes[found[differ]] = codes[differ]
            if path in sort_paths:
                for at in differ.tolist():
                    before, after = column.value_of(int(old[at])), column.value_of(int(codes[at]))
                    resorted[at] |= json_key(before) != json_key(after)
        if "last_updated" in sort_paths or _unread(sort_paths, self.columns):
            resorted[:] = True
        moved = found[resorted]
        for rank in self.ranks.values() if len(moved) else ():
            fresh = moved[~rank.dirty[moved]]
            rank.dirty[fresh] = True
            rank.dirty_count += len(fresh)

    def _append(self, count: int) -> None:
        # In the spare rows of the mapped snapshot while they last (`rowdata.grown`).
        size = self.n + count
        self.active = grown(self.active, count)
        self.created = grown(self.created, count)
        self.last_updated = grown(self.last_updated, count)
        self.search.grow(count)
        for column in self.columns.values():
            column.codes = grown(column.codes, count)
        for word in self.words:
            self.words[word] = grown(self.words[word], count)
        for rank in self.ranks.values():
            rank.dirty = grown(rank.dirty, count, True)
            rank.dirty_count += count
        self.n = size

    def uid_column(self) -> Column:
        """`uid` as a column (one entry per row), for rules other than equality on it."""
        if self._uid_column is None:
            column = Column("uid", self.n)
            column.values = [None, *self.uids.tolist()]
            column.keys = {}
            column.codes = np.arange(1, self.n + 1, dtype=np.int32)
            self._uid_column = column
        return self._uid_column

    def word(self, word: str) -> Mask:
        """Which rows' search text holds `word`: worked out on first use, then kept in
        step with writes (the last MAX_WORDS words searched for)."""
        holders = self.words.get(word)
        if holders is None:
            holders = self.search.holders(word)
            self.words[word] = holders
            while len(self.words) > MAX_WORDS:
                self.words.popitem(last=False)
        self.words.move_to_end(word)
        return holders

    def rows_of(self, uids: Iterable[str]) -> np.ndarray[Any, np.dtype[np.int64]]:
        return self.uids.rows(uids)

    def mask_of(self, uids: Iterable[str]) -> Mask:
        mask = np.zeros(self.n, dtype=bool)
        mask[self.rows_of(uids)] = True
        return mask


def _unread(sort_paths: set[str], columns: dict[str, Column]) -> bool:
    """Whether a sort reads a path this store has no column of (it cannot tell whether a
    written row moved, so the row counts as moved)."""
    return any(p not in columns and p not in ("created", "uid") for p in sort_paths)
