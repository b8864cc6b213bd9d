"""The filter document evaluated over a store's columns: one boolean per row.

A third reading of the filter document beside fold.rules.sql and fold.rules.python, held
to the same answers by the property tests. Leaf tests run once per distinct value (an
entry), vectorised with numpy where that is exactly Python's meaning and value by value
with the operator table's own Python test where it is not; rows then take their entry's
answer by a gather. Anything it cannot answer exactly raises `Unsupported`, and the
caller asks the database instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fold.columns.store import EXACT_INT, Column, Mask, Store, Typed, micros
from fold.rules.filter import SYSTEM_KINDS, Node
from fold.rules.ops import OPS, fold, lower_ascii
from fold.rules.sql import TINY, near_factors
from fold.timefmt import parse_datetime

_ORDERED = ("gt", "gte", "lt", "lte")

# Below this many entries of a kind, testing each in Python costs less than numpy's setup.
VECTOR_MIN = 64

Lists = Callable[[str, str], list[str]]  # (segment uid, "include"|"exclude") -> record uids


class Unsupported(Exception):
    """A filter this reading does not answer; the database does."""


def paths(node: Node) -> set[str]:
    """The document paths a filter reads (the columns it needs)."""
    if "and" in node or "or" in node:
        out: set[str] = set()
        children: list[Node] = node["and"] if "and" in node else node["or"]
        for child in children:
            out |= paths(child)
        return out
    if "not" in node:
        return paths(node["not"])
    if "near" in node:
        field = node["near"]["field"]
        return {f"{field}.lat", f"{field}.lng"}
    if "exists" in node:
        return {node["exists"]}
    if "size" in node:
        return {node["size"]["field"]}
    if "field" in node and node["field"] not in SYSTEM_KINDS:
        return {node["field"]}
    return set()


def evaluate(store: Store, node: Node, lists: Lists) -> Mask:
    if "and" in node:
        out = evaluate(store, node["and"][0], lists)
        for child in node["and"][1:]:
            out &= evaluate(store, child, lists)
        return out
    if "or" in node:
        out = evaluate(store, node["or"][0], lists)
        for child in node["or"][1:]:
            out |= evaluate(store, child, lists)
        return out
    if "not" in node:
        return ~evaluate(store, node["not"], lists)
    if "const" in node:
        return np.full(store.n, bool(node["const"]))
    if "near" in node:
        return _near(store, node["near"])
    if "exists" in node:
        exists: Mask = store.columns[node["exists"]].codes != 0
        return exists
    if "size" in node:
        column = store.columns[node["size"]["field"]]
        wanted = node["size"]["n"]
        lut = np.array([isinstance(v, list) and len(v) == wanted for v in column.values])
        sized: Mask = lut[column.codes]
        return sized
    if "listed" in node:
        listed = node["listed"]
        return store.mask_of(lists(listed["segment"], listed["list"]))
    return _leaf(store, node)


def _leaf(store: Store, node: Node) -> Mask:
    field, op, kind, value = node["field"], node["op"], node["kind"], node["value"]
    if field in ("created", "last_updated"):
        return _datetime(getattr(store, field), op, value)
    if field == "uid":
        if op in ("eq", "in", "eq_fold", "in_fold") and kind == "string":
            wanted = value if isinstance(value, list) else [value]
            folded = op.endswith("_fold")
            if not folded or all(fold(w) == w for w in wanted):
                return store.mask_of(wanted)
        column = store.uid_column()
    else:
        column = store.columns[field]
    hits = entry_hits(column, op, kind, value)
    if node["any"] and field not in SYSTEM_KINDS:
        derived = column.derived()
        owners, elements = derived["owners"], derived["elements"]
        if len(owners):
            listed = np.zeros(len(column.values), dtype=bool)
            listed[owners[hits[elements]]] = True
            # A list matches through its elements; a list entry itself never matches.
            hits = hits | listed
    out: Mask = hits[column.codes]
    return out


def entry_hits(column: Column, op_name: str, kind: str, arg: Any) -> Mask:
    """For each entry of `column`: is it a `kind` value that passes the test?"""
    hits = np.zeros(len(column.values), dtype=bool)
    typed: Typed | None = column.derived().get(kind)
    if typed is None or not len(typed.ids):
        return hits
    hits[typed.ids[_typed_hits(typed, op_name, kind, arg)]] = True
    return hits


def _typed_hits(typed: Typed, op_name: str, kind: str, arg: Any) -> Any:
    op = OPS[op_name]
    if not _vectorisable(typed, op_name, kind, arg):
        return np.array([op.python(v, arg, kind) for v in typed.values], dtype=bool)
    values = typed.array
    if kind == "string":
        if op_name == "eq":
            return values == arg
        if op_name == "eq_fold":
            return typed.folded == fold(arg)
        if op_name == "in":
            return np.isin(values, np.array(list(arg), dtype=values.dtype))
        if op_name == "in_fold":
            return np.isin(typed.folded, np.array([fold(a) for a in arg], dtype=values.dtype))
        if op_name == "prefix":
            return np.strings.startswith(values, arg)
        if op_name == "prefix_fold":
            return np.strings.startswith(typed.lowered, lower_ascii(arg))
        return _ordered(values, op_name, arg)
    if kind == "number":
        if op_name in ("in", "in_fold"):
            return np.isin(values, np.array([float(a) for a in arg]))
        if op_name in ("eq", "eq_fold"):
            return values == float(arg)
        return _ordered(values, op_name, float(arg))
    if op_name in ("in", "in_fold"):
        return np.isin(values, np.array(list(arg), dtype=bool))
    return values == bool(arg)


def _vectorisable(typed: Typed, op_name: str, kind: str, arg: Any) -> bool:
    if len(typed.ids) < VECTOR_MIN or op_name == "regex" or typed.array is None:
        return False
    if kind == "number":
        args = arg if isinstance(arg, list) else [arg]
        exact = all(isinstance(a, float) or abs(a) <= EXACT_INT for a in args)
        return typed.exact and exact and op_name in ("eq", "eq_fold", "in", "in_fold", *_ORDERED)
    if kind == "boolean":
        return op_name in ("eq", "eq_fold", "in", "in_fold")
    return kind == "string"


def _ordered(values: Any, op_name: str, arg: Any) -> Any:
    if op_name == "gt":
        return values > arg
    if op_name == "gte":
        return values >= arg
    if op_name == "lt":
        return values < arg
    if op_name == "lte":
        return values <= arg
    raise Unsupported(op_name)


def _datetime(column: np.ndarray[Any, Any], op_name: str, value: Any) -> Mask:
    """created / last_updated, compared as the database compares its datetime columns."""
    if op_name in ("in", "in_fold"):
        return np.isin(column, np.array([micros(parse_datetime(v)) for v in value]))
    when = micros(parse_datetime(value))
    if op_name in ("eq", "eq_fold"):
        return column == when  # type: ignore[no-any-return]
    if op_name in _ORDERED:
        return _ordered(column, op_name, when)  # type: ignore[no-any-return]
    raise Unsupported(f"{op_name} on a datetime column")


def _near(store: Store, near: dict[str, Any]) -> Mask:
    """As fold.rules.python._near, in the same float operations in the same order, on the
    rows inside a latitude band a little wider than the circle (no row outside it can
    pass: its dy alone is beyond the radius)."""
    lat = store.columns[f"{near['field']}.lat"].numbers()
    lng = store.columns[f"{near['field']}.lng"].numbers()
    k_lat, k_lng = near_factors(near["lat"])
    band = near["km"] / k_lat * 1.001 + 1e-9
    with np.errstate(invalid="ignore", over="ignore"):
        rows = np.flatnonzero((lat >= near["lat"] - band) & (lat <= near["lat"] + band))
        dy = (lat[rows] - near["lat"]) * k_lat
        dx = (lng[rows] - near["lng"]) * k_lng
        dy[np.abs(dy) < TINY] = 0.0
        dx[np.abs(dx) < TINY] = 0.0
        limit: float = near["km"] * near["km"]
        inside = dy * dy + dx * dx <= limit
    out = np.zeros(store.n, dtype=bool)
    out[rows[inside]] = True
    return out
