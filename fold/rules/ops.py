"""The rule language, defined once. Every engine reads this table and nothing else:

- `TESTS`: the primitive value tests a filter document's leaves name (`eq_fold`, `gt`,
  `prefix` ...), each with its SQL meaning, its Python meaning, its vectorised meaning over
  a column's distinct values (for the column index) and the JSON kinds it applies to;
- `OPERATORS`: the operators rules are written with (`equals`, `greater_than` ...), each
  naming its test, how a list of values combines, the field types it accepts and its
  phrase in the rule sentence;
- `SYSTEM`: Fold's own fields (uid, display_value, created, last_updated; `uri` is read
  as uid), each with where the three engines find its value;
- `near` and the comparison of moments (date-times as microseconds since 1970).

Strings compare by code point; "folded" comparisons lower-case ASCII letters only and trim
spaces, which SQLite, PostgreSQL (under the "C" collation) and Python all do the same way.
Dialect spellings live in fold.db.jsonsql.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Float, String, bindparam, case, func, literal

from fold.db.jsonsql import Rounded, collate_binary, fold_case, regex_match
from fold.rules.values import compiled_regex
from fold.timefmt import parse_datetime

ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
EXACT_INT = 2**53  # beyond this float64 would round what Python compares exactly


def lower_ascii(value: str) -> str:
    return value.translate(ASCII_LOWER)


def fold(value: str) -> str:
    """How `equals` sees a string: ASCII lower-case, surrounding spaces ignored."""
    return lower_ascii(value.strip(" "))


def regex_search(pattern: str, flags: str, value: Any) -> bool:
    """`$regex` in Python (the twin, the column index and SQLite's fold_regexp), by RE2."""
    if not isinstance(value, str):
        return False
    fold_case = "i" in flags
    text = lower_ascii(value) if fold_case else value
    return compiled_regex(pattern, fold_case).search(text) is not None


# --- moments: created, last_updated ----------------------------------------------------


def micros(value: Any) -> int:
    """A date-time (a datetime, or ISO text as rules and SQLite hold it) as microseconds
    since 1970, naive UTC: the one way the three engines compare moments."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    delta: timedelta = value - datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# --- the primitive tests ----------------------------------------------------------------

SqlFn = Callable[[ColumnElement[Any], Any, str, str], ColumnElement[bool]]
PyFn = Callable[[Any, Any, str], bool]
# (the entries: .array, .folded, .lowered, .exact; argument; kind) -> a bool per entry, or
# None when numpy would not give exactly Python's answer (the engine then asks `python`).
VecFn = Callable[[Any, Any, str], Any]

SCALARS = frozenset({"string", "number", "boolean", "datetime"})
ORDERED_KINDS = frozenset({"string", "number", "datetime"})
TEXT = frozenset({"string"})


@dataclass(frozen=True)
class Test:
    name: str
    kinds: frozenset[str]  # the kinds of value (string, number, boolean, datetime) it tests
    python: PyFn  # (record value, argument, kind) -> bool
    sql: SqlFn  # (value expression, argument, kind, dialect) -> boolean expression
    vector: VecFn | None = None  # None: value by value with `python`
    many: str | None = None  # the test taking a list of arguments (eq_fold -> in_fold)


def _is_text(kind: str) -> bool:
    return kind == "string"


def _sql_fold(expr: ColumnElement[Any], kind: str, dialect: str) -> ColumnElement[Any]:
    return fold_case(func.trim(expr), dialect) if _is_text(kind) else expr


def _py_fold(value: Any, kind: str) -> Any:
    return fold(value) if _is_text(kind) else value


def _ordered(expr: ColumnElement[Any], kind: str, dialect: str) -> ColumnElement[Any]:
    return collate_binary(expr, dialect) if _is_text(kind) else expr


def bind(value: Any, kind: str) -> Any:
    """A typed bind: an untyped list takes the type of its first value on PostgreSQL,
    which would read 0.25 as an integer after a -1."""
    if _is_text(kind):
        return bindparam(None, value, type_=String())
    if kind == "number":
        return bindparam(None, float(value), type_=Float())
    if kind == "datetime":
        return literal(parse_datetime(value) if isinstance(value, str) else value)
    return literal(value)


def _binds(values: Any, kind: str) -> list[Any]:
    return [bind(v, kind) for v in values]


def argument(value: Any, kind: str) -> Any:
    """An argument as Python and numpy compare it: moments as microseconds."""
    if kind == "datetime":
        return [micros(v) for v in value] if isinstance(value, list) else micros(value)
    return value


def _exact(entries: Any, arg: Any, kind: str) -> bool:
    """Whether numpy's float64 compares these numbers exactly as Python does."""
    if kind != "number":
        return entries.array is not None
    args = arg if isinstance(arg, list) else [arg]
    return bool(entries.exact) and all(isinstance(a, float) or abs(a) <= EXACT_INT for a in args)


def _vec_number(arg: Any, kind: str) -> Any:
    return float(arg) if kind == "number" else bool(arg) if kind == "boolean" else arg


def _vec_eq(entries: Any, arg: Any, kind: str) -> Any:
    return entries.array == _vec_number(arg, kind) if _exact(entries, arg, kind) else None


def _vec_in(entries: Any, arg: Any, kind: str) -> Any:
    if not _exact(entries, arg, kind):
        return None
    values = entries.array
    wanted = [_vec_number(a, kind) for a in arg]
    return np.isin(values, _like(values, wanted))


def _like(values: Any, wanted: list[Any]) -> Any:
    """`wanted` as an array of the entries' type; fixed-width text as wide as it needs
    (in the entries' width it would be cut short)."""
    if values.dtype.kind == "U":
        return np.array(wanted, dtype=str)
    return np.array(wanted, dtype=values.dtype)


def _vec_eq_fold(entries: Any, arg: Any, kind: str) -> Any:
    if kind == "string" and entries.array is not None:
        return entries.folded == fold(arg)
    return _vec_eq(entries, arg, kind)


def _vec_in_fold(entries: Any, arg: Any, kind: str) -> Any:
    if kind == "string" and entries.array is not None:
        return np.isin(entries.folded, _like(entries.folded, [fold(a) for a in arg]))
    return _vec_in(entries, arg, kind)


def _compare(name: str, py: Callable[[Any, Any], Any]) -> Test:
    def vector(entries: Any, arg: Any, kind: str) -> Any:
        return py(entries.array, _vec_number(arg, kind)) if _exact(entries, arg, kind) else None

    return Test(
        name,
        ORDERED_KINDS,
        lambda v, a, k: py(v, a),
        lambda e, a, k, d: py(_ordered(e, k, d), bind(a, k)),
        vector,
    )


def _prefix_sql(expr: ColumnElement[Any], arg: str, folded: bool, dialect: str) -> Any:
    value = fold_case(expr, dialect) if folded else expr
    wanted = lower_ascii(arg) if folded else arg
    return func.substr(value, 1, len(wanted)) == bindparam(None, wanted, type_=String())


def _vec_strings(method: Callable[[Any, str], Any], lowered: bool = False) -> VecFn:
    def vector(entries: Any, arg: Any, kind: str) -> Any:
        if entries.array is None:
            return None
        return method(entries.lowered, lower_ascii(arg)) if lowered else method(entries.array, arg)

    return vector


TESTS: dict[str, Test] = {
    t.name: t
    for t in (
        Test(
            "eq", SCALARS, lambda v, a, k: v == a, lambda e, a, k, d: e == bind(a, k), _vec_eq, "in"
        ),
        Test(
            "eq_fold",
            SCALARS,
            lambda v, a, k: _py_fold(v, k) == _py_fold(a, k),
            lambda e, a, k, d: _sql_fold(e, k, d) == bind(_py_fold(a, k), k),
            _vec_eq_fold,
            "in_fold",
        ),
        Test(
            "in", SCALARS, lambda v, a, k: v in a, lambda e, a, k, d: e.in_(_binds(a, k)), _vec_in
        ),
        Test(
            "in_fold",
            SCALARS,
            lambda v, a, k: _py_fold(v, k) in {_py_fold(x, k) for x in a},
            lambda e, a, k, d: _sql_fold(e, k, d).in_(
                _binds(sorted({_py_fold(x, k) for x in a}), k)
            ),
            _vec_in_fold,
        ),
        _compare("gt", lambda v, a: v > a),
        _compare("gte", lambda v, a: v >= a),
        _compare("lt", lambda v, a: v < a),
        _compare("lte", lambda v, a: v <= a),
        Test(
            "prefix",
            TEXT,
            lambda v, a, k: v.startswith(a),
            lambda e, a, k, d: _prefix_sql(e, a, False, d),
            _vec_strings(np.strings.startswith),
        ),
        Test(
            "prefix_fold",
            TEXT,
            lambda v, a, k: lower_ascii(v).startswith(lower_ascii(a)),
            lambda e, a, k, d: _prefix_sql(e, a, True, d),
            _vec_strings(np.strings.startswith, lowered=True),
        ),
        Test(
            "regex",
            TEXT,
            lambda v, a, k: regex_search(a["pattern"], a["flags"], v),
            lambda e, a, k, d: regex_match(e, a["pattern"], a["flags"], d),
        ),
    )
}


# --- the operators rules are written with -----------------------------------------------

# Field types a rule can compare (its values are read as the type); `None`: undeclared.
COMPARABLE = frozenset({"string", "number", "boolean", "date", "datetime", "list", "uri", None})
Phrases = dict[str, str]  # by sentence kind (string, number, date, list), "" for any


@dataclass(frozen=True)
class Operator:
    name: str
    form: str  # one | not | any | all | none | near | raw | related
    test: Test | None  # the primitive test of its values (a new one joins TESTS)
    value_kinds: frozenset[str] = SCALARS  # kinds of value it takes (after reading)
    refuse: str = ""  # why a value of another kind is refused ({operator}, {kind})
    phrase: Phrases = field(default_factory=dict)
    uri: bool = False  # takes record URIs for the `uri` field
    segment: bool = False  # takes segment URIs for the `segment` field

    def phrase_for(self, kind: str) -> str:
        return self.phrase.get(kind) or self.phrase[""]


ORDER_REFUSAL = "{operator} needs an ordered value, not true/false"
TEXT_REFUSAL = "{operator} works on text, not {kind}"


def _order(test: str, number: str, date: str, text: str) -> dict[str, Any]:
    return {
        "form": "one",
        "test": TESTS[test],
        "value_kinds": frozenset({"string", "number"}),
        "refuse": ORDER_REFUSAL,
        "phrase": {"number": number, "date": date, "string": text, "": text},
    }


OPERATORS: dict[str, Operator] = {
    o.name: o
    for o in (
        Operator(
            "equals",
            "one",
            TESTS["eq_fold"],
            phrase={"": "is {v}", "list": "include {v}"},
            uri=True,
        ),
        Operator(
            "exact",
            "one",
            TESTS["eq"],
            phrase={"": "is exactly {v}", "list": "include exactly {v}"},
            uri=True,
        ),
        Operator(
            "not_equal_to",
            "not",
            TESTS["eq_fold"],
            phrase={"": "is not {v}", "list": "do not include {v}"},
            uri=True,
        ),
        Operator(
            "greater_than",
            **_order("gt", "is more than {v}", "is after {v}", "comes after {v} alphabetically"),
        ),
        Operator(
            "greater_than_or_equals",
            **_order(
                "gte",
                "is at least {v}",
                "is on or after {v}",
                "is {v} or comes after it alphabetically",
            ),
        ),
        Operator(
            "less_than",
            **_order("lt", "is less than {v}", "is before {v}", "comes before {v} alphabetically"),
        ),
        Operator(
            "less_than_or_equals",
            **_order(
                "lte",
                "is at most {v}",
                "is on or before {v}",
                "is {v} or comes before it alphabetically",
            ),
        ),
        Operator(
            "starts_with",
            "one",
            TESTS["prefix"],
            frozenset({"string"}),
            TEXT_REFUSAL,
            {"": "starts with {v}"},
        ),
        Operator(
            "starts_with_case_insensitive",
            "one",
            TESTS["prefix_fold"],
            frozenset({"string"}),
            TEXT_REFUSAL,
            {"": "starts with {v} (any case)"},
        ),
        Operator(
            "ends_with",
            "one",
            Test(
                "suffix",
                TEXT,
                lambda v, a, k: v.endswith(a),
                lambda e, a, k, d: (
                    (func.length(e) >= len(a))
                    & (func.substr(e, func.length(e) - len(a) + 1) == bind(a, k))
                ),
                _vec_strings(np.strings.endswith),
            ),
            frozenset({"string"}),
            TEXT_REFUSAL,
            {"": "ends with {v}"},
        ),
        Operator(
            "or_list",
            "any",
            TESTS["eq_fold"],
            phrase={"": "is any of {v}", "list": "include any of {v}"},
            uri=True,
            segment=True,
        ),
        Operator(
            "and_list",
            "all",
            TESTS["eq_fold"],
            phrase={"": "includes all of {v}", "list": "include all of {v}"},
            segment=True,
        ),
        Operator(
            "none_of",
            "none",
            TESTS["eq_fold"],
            phrase={"": "is none of {v}", "list": "include none of {v}"},
            uri=True,
            segment=True,
        ),
        Operator("near", "near", None, phrase={"": "is within {v}"}),
        Operator("raw", "raw", None, phrase={"": "match a custom filter"}),
        Operator("related", "related", None, phrase={"": "with {v}"}),
    )
}
# An operator that brings its own test makes it known to every engine.
TESTS.update({o.test.name: o.test for o in OPERATORS.values() if o.test is not None})
LIST_FORMS = ("any", "all", "none")
# What a related-record rule may compare a count or an aggregate with.
COMPARISONS = tuple(
    name for name, op in OPERATORS.items() if op.form == "one" and "number" in op.value_kinds
)


# --- related records: quantifiers and aggregates -----------------------------------------


@dataclass(frozen=True)
class Aggregate:
    """A number worked out over the related records that pass a related rule's filter."""

    name: str
    phrase: str  # "total amount", with the field's label after it
    numeric: bool  # reads a numeric field (count does not)
    # (a number expression, or None for count) -> the aggregate expression (NULL: none)
    sql: Callable[[Any], Any]
    # the numbers (or, for count, one entry per record) -> the value; None: none
    python: Callable[[list[float]], float | None]
    # (owner row per related row, its number or None, rows) -> a float per row, NaN: none
    vector: Callable[[Any, Any, int], Any]


SUM_PLACES = 6


def _extreme(reduce: Any, start: float) -> Callable[[Any, Any, int], Any]:
    def vector(owners: Any, weights: Any, n: int) -> Any:
        out = np.full(n, start)
        reduce.at(out, owners, weights)
        out[out == start] = np.nan
        return out

    return vector


AGGREGATES: dict[str, Aggregate] = {
    a.name: a
    for a in (
        Aggregate(
            "count",
            "number",
            False,
            lambda x: func.count(),
            lambda values: float(len(values)),
            lambda owners, weights, n: np.bincount(owners, minlength=n).astype(np.float64),
        ),
        # A sum is rounded to SUM_PLACES decimal places: each engine adds in its own order,
        # and 60.10 + 39.90 must be 100 on all three.
        Aggregate(
            "sum",
            "total",
            True,
            lambda x: Rounded(func.coalesce(func.sum(x), 0.0), SUM_PLACES),
            lambda values: round(float(sum(values)), SUM_PLACES),
            lambda owners, weights, n: np.round(
                np.bincount(owners, weights=weights, minlength=n), SUM_PLACES
            ),
        ),
        Aggregate(
            "min",
            "smallest",
            True,
            lambda x: func.min(x),
            lambda values: min(values) if values else None,
            _extreme(np.minimum, np.inf),
        ),
        Aggregate(
            "max",
            "largest",
            True,
            lambda x: func.max(x),
            lambda values: max(values) if values else None,
            _extreme(np.maximum, -np.inf),
        ),
    )
}
# How a related rule counts, in its JSON: "any", "none", {"at_least": n}, {"at_most": n}.
QUANTIFIERS: dict[str, tuple[str, int | None]] = {
    "any": ("gte", 1),
    "none": ("lt", 1),
    "at_least": ("gte", None),
    "at_most": ("lte", None),
}


# --- Fold's own fields ------------------------------------------------------------------


@dataclass(frozen=True)
class SystemField:
    """A field Fold keeps in its own column: where each engine finds the value, and the
    kind every engine compares it as."""

    name: str
    kind: str  # "string" or "datetime"
    label: str
    sql: Callable[[Any], Any]  # the records table (or an alias of it) -> its column
    python: Callable[[dict[str, Any]], Any]  # a record as the API gives it -> the value
    # a column store -> its dictionary-encoded column, or its values row by row (Moments)
    vector: Callable[[Any], Any]
    # a column store, test, argument -> the rows, when a lookup answers faster; else None
    lookup: Callable[[Any, str, Any], Any] = lambda store, test, arg: None


@dataclass
class Moments:
    """A column of moments (microseconds) as entries: one entry per row."""

    array: Any
    exact: bool = True
    values: Any = None
    folded: Any = None
    lowered: Any = None


def _uid_lookup(store: Any, test: str, arg: Any) -> Any:
    """uid equality by the store's row map: a thousand includes need no scan."""
    if test not in ("eq", "in", "eq_fold", "in_fold"):
        return None
    wanted = arg if isinstance(arg, list) else [arg]
    if test.endswith("_fold") and any(fold(w) != w for w in wanted):
        return None
    return store.mask_of(wanted)


SYSTEM: dict[str, SystemField] = {
    s.name: s
    for s in (
        SystemField(
            "uid",
            "string",
            "uid",
            lambda t: t.uid,
            lambda r: r["uid"],
            lambda store: store.uid_column(),
            _uid_lookup,
        ),
        SystemField(
            "display_value",
            "string",
            "name",
            lambda t: t.display_value,
            lambda r: r["display_value"],
            lambda store: store.columns["display_value"],
        ),
        SystemField(
            "created",
            "datetime",
            "creation date",
            lambda t: t.created,
            lambda r: micros(r["created"]),
            lambda store: Moments(store.created),
        ),
        SystemField(
            "last_updated",
            "datetime",
            "last update",
            lambda t: t.last_updated,
            lambda r: micros(r["last_updated"]),
            lambda store: Moments(store.last_updated),
        ),
    )
}
URI_LABEL = "URI"


# --- near -------------------------------------------------------------------------------

KM_PER_DEGREE = 111.195
KM_PER_MILE = 1.609344
TINY = 1e-100  # offsets too small to matter are 0: PostgreSQL refuses to square a subnormal


def near_factors(lat: float) -> tuple[float, float]:
    """km per degree of latitude and of longitude at `lat` (equirectangular)."""
    return KM_PER_DEGREE, KM_PER_DEGREE * math.cos(math.radians(lat))


def near_sql(lat_expr: Any, lng_expr: Any, lat: float, lng: float, km: float) -> Any:
    """Within `km` of (lat, lng); NULL unless both coordinates are numbers."""
    k_lat, k_lng = near_factors(lat)

    def clamp(expr: Any) -> Any:
        return case((func.abs(expr) < TINY, 0.0), else_=expr)

    dy = clamp((lat_expr - lat) * k_lat)
    dx = clamp((lng_expr - lng) * k_lng)
    return dy * dy + dx * dx <= km * km


def near_python(lat_value: Any, lng_value: Any, lat: float, lng: float, km: float) -> bool:
    def number(value: Any) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)

    y, x = number(lat_value), number(lng_value)
    if y is None or x is None:
        return False
    k_lat, k_lng = near_factors(lat)
    dy = (y - lat) * k_lat
    dx = (x - lng) * k_lng
    dy = 0.0 if abs(dy) < TINY else dy
    dx = 0.0 if abs(dx) < TINY else dx
    return bool(dy * dy + dx * dx <= km * km)


def near_vector(
    lat_entries: Any,
    lat_codes: Any,
    lng_entries: Any,
    lng_codes: Any,
    lat: float,
    lng: float,
    km: float,
) -> Any:
    """As near_python, in the same float operations in the same order, over columns given
    as each entry's number (NaN where it is none) and each row's entry code: a row's
    latitude is `lat_entries[lat_codes[row]]`. Only the rows inside a latitude band a
    little wider than the circle are looked at (no row outside it can pass: its dy alone is
    beyond the radius); the band is tested on the entries, so no float per row is made."""
    k_lat, k_lng = near_factors(lat)
    band = km / k_lat * 1.001 + 1e-9
    with np.errstate(invalid="ignore", over="ignore"):
        in_band = (lat_entries >= lat - band) & (lat_entries <= lat + band)
        # np.take: a third quicker than indexing for these gathers.
        rows = np.flatnonzero(np.take(in_band, lat_codes))
        dy = (np.take(lat_entries, np.take(lat_codes, rows)) - lat) * k_lat
        dx = (np.take(lng_entries, np.take(lng_codes, rows)) - lng) * k_lng
        dy[np.abs(dy) < TINY] = 0.0
        dx[np.abs(dx) < TINY] = 0.0
        inside = dy * dy + dx * dx <= km * km
    out = np.zeros(len(lat_codes), dtype=bool)
    out[rows[inside]] = True
    return out


def kind_of(value: Any) -> str | None:
    """The JSON kind of a Python value as the tests see it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None
