"""SQL over JSON documents. Each dialect's spelling lives here and nowhere else.

`JsonTest` is the one construct rules compile to for a field inside the record document:
"the value at this path is of this JSON kind and satisfies this predicate", either as a
scalar or (`any=True`) for any element of an array at the path, Mongo-style. The
predicate is built per dialect from the value expression the dialect gives, so the
callers (the rule compiler's operator table) never see dialect differences.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    String,
    Text,
    any_,
    bindparam,
    func,
    literal_column,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

# What a path expression is made of, so that SQLAlchemy caches the statements holding it
# (the path is written into the SQL, so it is part of the cache key).
_AT_PATH = [
    ("column", InternalTraversal.dp_clauseelement),
    ("path", InternalTraversal.dp_string),
]

Kind = str  # "string", "number" or "boolean": the JSON kind a value must have
Predicate = Callable[[ColumnElement[Any], str], ColumnElement[bool]]

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")

SQLITE_KINDS = {"string": "('text')", "number": "('integer','real')", "boolean": "('true','false')"}
PG_KINDS = {"string": "string", "number": "number", "boolean": "boolean"}


def check_path(path: str) -> str:
    # Paths are inlined as literals (so expression indexes can match them): only safe names.
    # A guard against SQL in a path, not the format clients may send (fields.paths has
    # that): it refuses nothing any layer above accepts.
    if not _SAFE_PATH.match(path):
        raise ValueError(f"unsafe JSON path {path!r}")
    return path


def sqlite_path(path: str) -> str:
    parts = check_path(path).split(".")
    return "'$" + "".join(f".{p}" if _PLAIN_KEY.match(p) else f'."{p}"' for p in parts) + "'"


def pg_path(path: str) -> str:
    return "'{" + ",".join(check_path(path).split(".")) + "}'"


def fold_case(expr: ColumnElement[Any], dialect: str) -> ColumnElement[str]:
    """ASCII lower-case: the same on SQLite, PostgreSQL and in Python (see rules.ops)."""
    if dialect == "postgresql":
        return func.lower(expr.collate("C"))
    return func.lower(expr)


def collate_binary(expr: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """Strings ordered by code point on both databases."""
    return expr.collate("C") if dialect == "postgresql" else expr


def regex_match(expr: ColumnElement[Any], pattern: str, flags: str, dialect: str) -> Any:
    """`$regex`: on PostgreSQL its own operator, on SQLite Fold's fold_regexp (RE2)."""
    if dialect == "postgresql":
        # Under the "C" collation PostgreSQL's regex folds case and reads classes in ASCII
        # only, as Python does with re.ASCII; a server locale would fold more.
        operator = "~*" if "i" in flags else "~"
        return expr.collate("C").op(operator)(bindparam(None, pattern, type_=String()))
    return func.fold_regexp(pattern, flags, expr) == 1


class JsonTest(ColumnElement[bool]):
    type = Boolean()
    inherit_cache = False

    def __init__(
        self, column: Any, path: str, kind: Kind, predicate: Predicate, *, any: bool
    ) -> None:
        self.column = column
        self.path = check_path(path)
        self.kind = kind
        self.predicate = predicate
        self.any = any


def _value_type(kind: Kind) -> Any:
    return Float() if kind == "number" else Boolean() if kind == "boolean" else String()


@compiles(JsonTest, "sqlite")
def _json_test_sqlite(element: JsonTest, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    path = sqlite_path(element.path)
    kinds = SQLITE_KINDS[element.kind]
    if element.any:
        value = literal_column("je.value", _value_type(element.kind))
        test = compiler.process(element.predicate(value, "sqlite"), **kw)
        return (
            f"(json_type({column}, {path}) <> 'object' AND EXISTS (SELECT 1 FROM "
            f"json_each({column}, {path}) AS je WHERE je.type IN {kinds} AND {test}))"
        )
    value = literal_column(f"json_extract({column}, {path})", _value_type(element.kind))
    test = compiler.process(element.predicate(value, "sqlite"), **kw)
    return f"(json_type({column}, {path}) IN {kinds} AND {test})"


def _pg_value(doc: str, kind: Kind) -> str:
    typeof = f"jsonb_typeof({doc}) = '{PG_KINDS[kind]}'"
    if kind == "number":
        return f"(CASE WHEN {typeof} THEN ({doc} #>> '{{}}')::float8 END)"
    if kind == "boolean":
        return f"(CASE WHEN {typeof} THEN ({doc} #>> '{{}}')::boolean END)"
    return f"(CASE WHEN {typeof} THEN ({doc} #>> '{{}}') END)"


@compiles(JsonTest, "postgresql")
def _json_test_pg(element: JsonTest, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    doc = f"({column} #> {pg_path(element.path)})"
    if element.any:
        value = literal_column(_pg_value("je.v", element.kind), _value_type(element.kind))
        test = compiler.process(element.predicate(value, "postgresql"), **kw)
        items = (
            f"CASE jsonb_typeof({doc}) WHEN 'array' THEN {doc} WHEN 'object' THEN '[]'::jsonb "
            f"ELSE jsonb_build_array({doc}) END"
        )
        return f"EXISTS (SELECT 1 FROM jsonb_array_elements({items}) AS je(v) WHERE {test})"
    value = literal_column(_pg_value(doc, element.kind), _value_type(element.kind))
    return f"({compiler.process(element.predicate(value, 'postgresql'), **kw)})"


class JsonShape(ColumnElement[bool]):
    """`exists` (present and not null) or `size` (an array of n elements) at a path."""

    type = Boolean()
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("path", InternalTraversal.dp_string),
        ("test", InternalTraversal.dp_string),
        ("size", InternalTraversal.dp_plain_obj),
    ]

    def __init__(self, column: Any, path: str, test: str, size: int = 0) -> None:
        self.column = column
        self.path = check_path(path)
        self.test = test
        self.size = int(size)


@compiles(JsonShape, "sqlite")
def _json_shape_sqlite(element: JsonShape, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    path = sqlite_path(element.path)
    if element.test == "exists":
        return f"(coalesce(json_type({column}, {path}), 'null') <> 'null')"
    return (
        f"(json_type({column}, {path}) = 'array' AND "
        f"json_array_length({column}, {path}) = {element.size})"
    )


@compiles(JsonShape, "postgresql")
def _json_shape_pg(element: JsonShape, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    doc = f"({column} #> {pg_path(element.path)})"
    if element.test == "exists":
        return f"(coalesce(jsonb_typeof({doc}), 'null') <> 'null')"
    return (
        f"(CASE WHEN jsonb_typeof({doc}) = 'array' THEN jsonb_array_length({doc}) "
        f"= {element.size} ELSE false END)"
    )


class ColumnTest(ColumnElement[bool]):
    """A predicate on a plain column, built for the dialect it is compiled for."""

    type = Boolean()
    inherit_cache = False

    def __init__(self, column: Any, predicate: Predicate) -> None:
        self.column = column
        self.predicate = predicate


@compiles(ColumnTest)
def _column_test(element: ColumnTest, compiler: SQLCompiler, **kw: Any) -> str:
    dialect = compiler.dialect.name
    return f"({compiler.process(element.predicate(element.column, dialect), **kw)})"


class JsonNumber(ColumnElement[float]):
    """The number at a path, or NULL when the value there is not a number."""

    type = Float()
    _traverse_internals = _AT_PATH

    def __init__(self, column: Any, path: str) -> None:
        self.column = column
        self.path = check_path(path)


@compiles(JsonNumber, "sqlite")
def _json_number_sqlite(element: JsonNumber, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    path = sqlite_path(element.path)
    return (
        f"(CASE WHEN json_type({column}, {path}) IN ('integer','real') "
        f"THEN json_extract({column}, {path}) END)"
    )


@compiles(JsonNumber, "postgresql")
def _json_number_pg(element: JsonNumber, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return _pg_value(f"({column} #> {pg_path(element.path)})", "number")


class JsonLink(ColumnElement[str]):
    """The text at a path (a link field's URI), spelt exactly as migration 0013's
    expression indexes are, so a correlated lookup of related records uses them."""

    type = String()
    _traverse_internals = _AT_PATH

    def __init__(self, column: Any, path: str) -> None:
        self.column = column
        self.path = check_path(path)


@compiles(JsonLink, "sqlite")
def _json_link_sqlite(element: JsonLink, compiler: SQLCompiler, **kw: Any) -> str:
    # json_valid first: a row holding text that is not JSON (one stored before NaN was
    # refused) must stay writable, and its index entry is then NULL.
    column = compiler.process(element.column, **kw)
    path = sqlite_path(element.path)
    return f"(CASE WHEN json_valid({column}) THEN json_extract({column}, {path}) END)"


@compiles(JsonLink, "postgresql")
def _json_link_pg(element: JsonLink, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.column, **kw)} #>> {pg_path(element.path)})"


class Rounded(ColumnElement[float]):
    """A number rounded to `places` decimal places, as a float on both databases."""

    type = Float()
    _traverse_internals = [
        ("expr", InternalTraversal.dp_clauseelement),
        ("places", InternalTraversal.dp_plain_obj),
    ]

    def __init__(self, expr: Any, places: int) -> None:
        self.expr = expr
        self.places = int(places)


@compiles(Rounded, "sqlite")
def _rounded_sqlite(element: Rounded, compiler: SQLCompiler, **kw: Any) -> str:
    return f"round({compiler.process(element.expr, **kw)}, {element.places})"


@compiles(Rounded, "postgresql")
def _rounded_pg(element: Rounded, compiler: SQLCompiler, **kw: Any) -> str:
    inner = compiler.process(element.expr, **kw)
    return f"round(({inner})::numeric, {element.places})::float8"


def one_of(column: Any, values: list[str], dialect: str) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL as `= ANY(array)`, one parameter however many
    values (a thousand-value IN costs more to render and bind than to run)."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(Text())))  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]


def json_text(column: Any, path: str) -> ColumnElement[str]:
    """The value at `path` as text (NULL where missing); for sorting."""
    out: ColumnElement[str] = column[tuple(check_path(path).split("."))].as_string()
    return out


def json_number(column: Any, path: str) -> ColumnElement[float]:
    out: ColumnElement[float] = column[tuple(check_path(path).split("."))].as_float()
    return out


class JsonValue(ColumnElement[str]):
    """The JSON value at a path as the database writes it out as JSON text (NULL where
    missing): what the column index decodes, the same reading for every row it takes."""

    type = Text()
    _traverse_internals = _AT_PATH

    def __init__(self, column: Any, path: str) -> None:
        self.column = column
        self.path = check_path(path)


@compiles(JsonValue, "sqlite")
def _json_value_sqlite(element: JsonValue, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.column, **kw)} -> {sqlite_path(element.path)})"


@compiles(JsonValue, "postgresql")
def _json_value_pg(element: JsonValue, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(({compiler.process(element.column, **kw)} #> {pg_path(element.path)})::text)"
