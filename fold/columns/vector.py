"""The filter document evaluated over a store's columns: one boolean per row.

A third reading of the filter document beside fold.rules.sql and fold.rules.python, held
to the same answers by the property tests. Every test's meaning comes from the operator
table (fold.rules.ops): each leaf runs once per distinct value (an entry), with the
test's vectorised meaning where numpy gives exactly Python's answer and value by value
with its Python meaning where it does not; rows then take their entry's answer by a
gather. Anything it cannot answer exactly raises `Unsupported`, and the caller asks the
database instead.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, assert_never

import numpy as np

from fold.columns.store import Column, Mask, Store
from fold.columns.store import Typed as Entries
from fold.rules.filter import Node
from fold.rules.nodes import (
    And,
    Const,
    Exists,
    Leaf,
    Listed,
    Near,
    Not,
    Or,
    Related,
    Size,
    SystemLeaf,
    Typed,
    typed,
)
from fold.rules.nodes import paths as node_paths
from fold.rules.ops import AGGREGATES, Moments, Test, argument, near_vector

# Below this many entries of a kind, testing each in Python costs less than numpy's setup.
VECTOR_MIN = 64

Lists = Callable[[str, str], list[str]]  # (segment uid, "include"|"exclude") -> record uids
Stores = Callable[[str], Store]  # resource type -> its store, caught up and locked


class Unsupported(Exception):
    """A filter this reading does not answer; the database does."""


def paths(node: Node) -> set[str]:
    """The fields a filter reads (document paths, and Fold's own fields by name)."""
    return node_paths(typed(node))


def no_stores(resource_type: str) -> Store:
    raise Unsupported(f"no store of {resource_type} records at hand")


def evaluate(store: Store, node: Node, lists: Lists, stores: Stores = no_stores) -> Mask:
    return run(store, typed(node), lists, stores)


def run(store: Store, node: Typed, lists: Lists, stores: Stores = no_stores) -> Mask:
    match node:
        case And(parts):
            out = run(store, parts[0], lists, stores)
            for part in parts[1:]:
                out &= run(store, part, lists, stores)
            return out
        case Or(parts):
            out = run(store, parts[0], lists, stores)
            for part in parts[1:]:
                out |= run(store, part, lists, stores)
            return out
        case Not(part):
            return ~run(store, part, lists, stores)
        case Const(value):
            return np.full(store.n, value)
        case Near(field, lat, lng, km):
            lats, lngs = store.columns[f"{field}.lat"], store.columns[f"{field}.lng"]
            near: Mask = near_vector(
                lats.entry_numbers(), lats.codes, lngs.entry_numbers(), lngs.codes, lat, lng, km
            )
            return near
        case Exists(field):
            exists: Mask = store.columns[field].codes != 0
            return exists
        case Size(field, n):
            column = store.columns[field]
            lut = np.array([isinstance(v, list) and len(v) == n for v in column.values])
            sized: Mask = lut[column.codes]
            return sized
        case Listed(segment, kind):
            return store.mask_of(lists(segment, kind))
        case SystemLeaf(system, test, value):
            arg = argument(value, system.kind)
            found = system.lookup(store, test.name, arg)
            if found is not None:
                return found  # type: ignore[no-any-return]
            source = system.vector(store)
            if isinstance(source, Column):
                return _leaf(source, test, system.kind, arg, False)
            return _hits(source, test, system.kind, arg)  # type: ignore[no-any-return]
        case Leaf(field, test, kind, value, many):
            return _leaf(store.columns[field], test, kind, value, many)
        case Related():
            return _related(store, node, lists, stores)
        case _:
            assert_never(node)


def _related(store: Store, node: Related, lists: Lists, stores: Stores) -> Mask:
    """The related rule over columns: the filter over the related type's store, each of
    its rows' owner (the row of `store` its link names), then per owner the count or
    aggregate by numpy.bincount (or minimum/maximum.at), compared with the rule's
    number by the operator table's vectorised test."""
    other = stores(node.type)
    passing = run(other, node.filter, lists, stores)
    passing &= other.active
    having = node.having
    if having.field is not None:
        # Each row's number is its entry's: gathered for the rows that count, not kept.
        summed = other.columns[having.field]
        numbers = summed.entry_numbers()
        passing &= np.take(~np.isnan(numbers), summed.codes)
    rows = np.flatnonzero(passing)
    owners = owner_rows(other, node.link, store, rows)
    linked = owners >= 0
    owners = owners[linked]
    weights = None if having.field is None else np.take(numbers, summed.codes[rows[linked]])
    values = AGGREGATES[having.aggregate].vector(owners, weights, store.n)
    vector = having.test.vector
    hits = None if vector is None else vector(Moments(values), having.value, "number")
    if hits is None:
        raise Unsupported(f"{having.test.name} on an aggregate")
    out: Mask = np.asarray(hits, dtype=bool)
    return out


# link column -> owner store -> (entries resolved, owner rows seen, owner row per entry)
# (stores are unhashable dataclasses: keyed by id, with a weak reference to check it)
_owners: weakref.WeakKeyDictionary[Column, dict[int, Any]] = weakref.WeakKeyDictionary()


def owner_rows(
    other: Store, link: str, store: Store, rows: np.ndarray[Any, np.dtype[np.int64]]
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """For each of `rows` of `other`: the row of `store` whose URI its `link` field holds,
    or -1.
    The entry-to-row map is kept per column and extended as entries and rows are added
    (rows never move, and an entry's value never changes)."""
    if store.mixed:  # a link names its record's type, which a mixed store's rows do not say
        raise Unsupported("related records of a store of several types")
    column = other.columns[link]
    cached = _owners.setdefault(column, {})
    ref, done, seen, entry_rows = cached.get(id(store), (None, 0, -1, None))
    if ref is None or ref() is not store:
        done, seen, entry_rows = 0, -1, np.zeros(0, dtype=np.int64)
    size = column.entry_count()
    if done < size or seen != store.n:
        fresh = np.full(size, -1, dtype=np.int64)
        fresh[:done] = entry_rows[:done]
        todo = np.zeros(size, dtype=bool)
        todo[done:] = True
        if seen != store.n:  # entries that named no row may name one added since
            todo[:done] = fresh[:done] < 0
        # Only text names a row: each part's text entries, from its array where it has one.
        for part in column.derived_parts():
            text = part.get("string")
            if text is None or not len(text.ids):
                continue
            picked = todo[text.ids]
            if not picked.any():
                continue
            if text.array is not None and text.array.dtype.kind == "U":
                found = _named_rows_fixed(store, text.array[picked])
            else:
                values = text.values
                found = _named_rows(store, [values[i] for i in np.flatnonzero(picked).tolist()])
            fresh[text.ids[picked]] = found
        entry_rows = fresh
        cached[id(store)] = (weakref.ref(store), size, store.n, entry_rows)
    owners: np.ndarray[Any, np.dtype[np.int64]] = entry_rows[column.codes[rows]]
    return owners


def _named_rows(store: Store, values: list[Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """For each value: the row of `store` whose URI it is — exactly the URI Fold writes
    (make_uri), as the SQL compares it — or -1."""
    # Text holding NUL is never a URI (and numpy would take its NULs for padding).
    texts = [v if isinstance(v, str) and "\x00" not in v else "" for v in values]
    try:
        raw = np.array(texts, dtype="S")  # ASCII (every URI Fold makes): at once
    except UnicodeEncodeError:
        return _named_rows_one_by_one(store, texts)
    return _named_rows_ascii(store, raw)


def _named_rows_fixed(store: Store, texts: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
    """As `_named_rows`, for text entries in a fixed-width array (which holds no NUL)."""
    try:
        raw = texts.astype("S")  # ASCII (every URI Fold makes): at once
    except UnicodeEncodeError:
        return _named_rows_one_by_one(store, texts.tolist())
    return _named_rows_ascii(store, raw)


def _named_rows_one_by_one(store: Store, texts: list[str]) -> np.ndarray[Any, np.dtype[np.int64]]:
    prefix = f"/{store.bucket}/{store.resource_type}/"
    out = np.full(len(texts), -1, dtype=np.int64)
    picked = [i for i, v in enumerate(texts) if v.startswith(prefix) and v.endswith("/")]
    out[picked] = store.uids.locate([texts[i][len(prefix) : -1] for i in picked])
    return out


def _named_rows_ascii(store: Store, raw: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
    """As `_named_rows`, for texts as an ASCII bytes array holding no NUL."""
    prefix = f"/{store.bucket}/{store.resource_type}/"
    out = np.full(len(raw), -1, dtype=np.int64)
    start, width = len(prefix), raw.dtype.itemsize
    if width <= start + 1:
        return out
    grid = raw.view(np.uint8).reshape(len(raw), width)
    lengths = np.strings.str_len(raw)
    named = (grid[:, :start] == np.frombuffer(prefix.encode(), dtype=np.uint8)).all(axis=1)
    named &= lengths > start
    named &= grid[np.arange(len(raw)), np.maximum(lengths - 1, 0)] == ord("/")
    # The uid between prefix and final slash, a length at a time (all one, usually).
    for length in np.unique(lengths[named]).tolist():
        rows = np.flatnonzero(named & (lengths == length))
        middle = np.ascontiguousarray(grid[rows, start : length - 1])
        uids = middle.view(f"S{max(length - 1 - start, 1)}").ravel()
        if length - 1 == start:
            continue  # "/bucket/type//": no uid
        out[rows] = store.uids.locate_bytes(uids)
    return out


def _leaf(column: Column, test: Test, kind: str, value: Any, many: bool) -> Mask:
    hits = entry_hits(column, test, kind, value)
    if many:
        owners, elements = column.list_elements()
        if len(owners):
            listed = np.zeros(column.entry_count(), dtype=bool)
            listed[owners[hits[elements]]] = True
            # A list matches through its elements; a list entry itself never matches.
            hits = hits | listed
    out: Mask = hits[column.codes]
    return out


def entry_hits(column: Column, test: Test, kind: str, arg: Any) -> Mask:
    """For each entry of `column`: is it a `kind` value that passes the test?"""
    hits = np.zeros(column.entry_count(), dtype=bool)
    # Entries saved with the column and those added since: tested apart, so that the
    # saved arrays (shared with other processes) are never copied to add a few.
    for part in column.derived_parts():
        entries = part.get(kind)
        if entries is None or not len(entries.ids):
            continue
        hits[entries.ids[_hits(entries, test, kind, arg)]] = True
    return hits


def _hits(entries: Any, test: Test, kind: str, arg: Any) -> Any:
    """The test over entries: vectorised when the table says numpy is exact for it."""
    typed = isinstance(entries, Entries)
    # Few entries are quicker one by one, unless their values would have to be made.
    few = typed and entries.made and len(entries.ids) < VECTOR_MIN
    if test.vector is not None and not few and not _unfit(entries, arg):
        answer = test.vector(entries, arg, kind)
        if answer is not None:
            return answer
    if not typed:
        raise Unsupported(f"{test.name} on a column of {kind}")
    return np.array([test.python(v, arg, kind) for v in entries.values], dtype=bool)


def _unfit(entries: Any, arg: Any) -> bool:
    """Whether numpy would misread the argument: text holding NUL, which it takes for
    padding when it makes an array of it ("a\\x00" compares equal to "a", in fixed-width
    and variable-width strings alike), or text with no UTF-8 (lone surrogates) against
    variable-width strings. Such a test goes value by value."""
    args = arg if isinstance(arg, list) else [arg]
    texts = [a for a in args if isinstance(a, str)]
    if any("\x00" in a for a in texts):
        return True
    array = getattr(entries, "array", None)
    if array is None or array.dtype.kind != "T" or not texts:
        return False
    try:
        for a in texts:
            a.encode()
    except UnicodeEncodeError:
        return True
    return False
