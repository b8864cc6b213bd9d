"""The primitive tests of a filter document, each with its SQL and its Python meaning side
by side so the two cannot drift apart. Property tests hold them to the same answers.

Strings compare by code point; "folded" comparisons lower-case ASCII letters only and trim
spaces, which SQLite, PostgreSQL (under the "C" collation) and Python all do the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Float, String, bindparam, func, literal

from fold.db.jsonsql import collate_binary, fold_case
from fold.rules.values import compiled_regex

ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


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


SqlFn = Callable[[ColumnElement[Any], Any, str, str], ColumnElement[bool]]
PyFn = Callable[[Any, Any, str], bool]


@dataclass(frozen=True)
class Op:
    name: str
    python: PyFn  # (record value, argument, kind) -> bool
    sql: SqlFn  # (value expression, argument, kind, dialect) -> boolean expression


def _is_text(kind: str) -> bool:
    return kind == "string"


def _sql_fold(expr: ColumnElement[Any], kind: str, dialect: str) -> ColumnElement[Any]:
    return fold_case(func.trim(expr), dialect) if _is_text(kind) else expr


def _py_fold(value: Any, kind: str) -> Any:
    return fold(value) if _is_text(kind) else value


def _ordered(expr: ColumnElement[Any], kind: str, dialect: str) -> ColumnElement[Any]:
    return collate_binary(expr, dialect) if _is_text(kind) else expr


def _arg(value: Any, kind: str) -> Any:
    # Typed binds: an untyped list takes the type of its first value on PostgreSQL, which
    # would read 0.25 as an integer after a -1.
    if _is_text(kind):
        return bindparam(None, value, type_=String())
    if kind == "number":
        return bindparam(None, float(value), type_=Float())
    return literal(value)


def _args(values: Any, kind: str) -> list[Any]:
    return [_arg(v, kind) for v in values]


def _compare(py: Callable[[Any, Any], bool], sql: Callable[[Any, Any], Any]) -> tuple[PyFn, SqlFn]:
    return (
        lambda v, a, k: py(v, a),
        lambda e, a, k, d: sql(_ordered(e, k, d), _arg(a, k)),
    )


def _prefix_sql(expr: ColumnElement[Any], arg: str, folded: bool, dialect: str) -> Any:
    value = fold_case(expr, dialect) if folded else expr
    wanted = lower_ascii(arg) if folded else arg
    return func.substr(value, 1, len(wanted)) == bindparam(None, wanted, type_=String())


def _regex_sql(expr: ColumnElement[Any], arg: dict[str, str], dialect: str) -> Any:
    if dialect == "postgresql":
        # Under the "C" collation PostgreSQL's regex folds case and reads classes in ASCII
        # only, as Python does with re.ASCII; a server locale would fold more.
        operator = "~*" if "i" in arg["flags"] else "~"
        return expr.collate("C").op(operator)(bindparam(None, arg["pattern"], type_=String()))
    return func.fold_regexp(arg["pattern"], arg["flags"], expr) == 1


OPS: dict[str, Op] = {
    "eq": Op("eq", lambda v, a, k: v == a, lambda e, a, k, d: e == _arg(a, k)),
    "eq_fold": Op(
        "eq_fold",
        lambda v, a, k: _py_fold(v, k) == _py_fold(a, k),
        lambda e, a, k, d: _sql_fold(e, k, d) == _arg(_py_fold(a, k), k),
    ),
    "in": Op("in", lambda v, a, k: v in a, lambda e, a, k, d: e.in_(_args(a, k))),
    "in_fold": Op(
        "in_fold",
        lambda v, a, k: _py_fold(v, k) in {_py_fold(x, k) for x in a},
        lambda e, a, k, d: _sql_fold(e, k, d).in_(_args(sorted({_py_fold(x, k) for x in a}), k)),
    ),
    "gt": Op("gt", *_compare(lambda v, a: v > a, lambda e, a: e > a)),
    "gte": Op("gte", *_compare(lambda v, a: v >= a, lambda e, a: e >= a)),
    "lt": Op("lt", *_compare(lambda v, a: v < a, lambda e, a: e < a)),
    "lte": Op("lte", *_compare(lambda v, a: v <= a, lambda e, a: e <= a)),
    "prefix": Op(
        "prefix",
        lambda v, a, k: v.startswith(a),
        lambda e, a, k, d: _prefix_sql(e, a, False, d),
    ),
    "prefix_fold": Op(
        "prefix_fold",
        lambda v, a, k: lower_ascii(v).startswith(lower_ascii(a)),
        lambda e, a, k, d: _prefix_sql(e, a, True, d),
    ),
    "regex": Op(
        "regex",
        lambda v, a, k: regex_search(a["pattern"], a["flags"], v),
        lambda e, a, k, d: _regex_sql(e, a, d),
    ),
}

# Which kinds each value test accepts; ordering on true/false means nothing.
KINDS_FOR: dict[str, frozenset[str]] = {
    "eq": frozenset({"string", "number", "boolean"}),
    "eq_fold": frozenset({"string", "number", "boolean"}),
    "in": frozenset({"string", "number", "boolean"}),
    "in_fold": frozenset({"string", "number", "boolean"}),
    "gt": frozenset({"string", "number"}),
    "gte": frozenset({"string", "number"}),
    "lt": frozenset({"string", "number"}),
    "lte": frozenset({"string", "number"}),
    "prefix": frozenset({"string"}),
    "prefix_fold": frozenset({"string"}),
    "regex": frozenset({"string"}),
}


def kind_of(value: Any) -> str | None:
    """The JSON kind of a Python value as the tests see it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None
