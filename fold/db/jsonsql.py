"""SQL over JSON documents. Each dialect's spelling lives here and nowhere else."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement, Float, String, bindparam, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import Text


def path_tuple(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def json_text(column: Any, path: str) -> ColumnElement[str]:
    """The value at `path` as text (NULL where missing)."""
    out: ColumnElement[str] = column[path_tuple(path)].as_string()
    return out


def json_number(column: Any, path: str) -> ColumnElement[float]:
    out: ColumnElement[float] = column[path_tuple(path)].as_float()
    return out


class ArrayAnyEquals(ColumnElement[bool]):
    """True when the array at `path` has an element equal to `value` (or, in SQLite, when a
    scalar there equals it). `fold_case` compares lower-cased and trimmed."""

    type = Boolean()
    inherit_cache = False

    def __init__(self, column: Any, path: str, value: str, *, fold_case: bool) -> None:
        self.column = column
        self.path = path_tuple(path)
        self.value = value.strip().lower() if fold_case else value
        self.fold_case = fold_case


@compiles(ArrayAnyEquals, "sqlite")
def _array_any_sqlite(element: ArrayAnyEquals, compiler: SQLCompiler, **kw: Any) -> str:
    path = "$" + "".join(f'."{p}"' for p in element.path)
    column = compiler.process(element.column, **kw)
    value = compiler.process(bindparam(None, element.value, type_=String()), **kw)
    item = "lower(trim(je.value))" if element.fold_case else "je.value"
    path_sql = compiler.process(bindparam(None, path, type_=String()), **kw)
    return (
        f"EXISTS (SELECT 1 FROM json_each({column}, {path_sql}) AS je "
        f"WHERE je.type = 'text' AND {item} = {value})"
    )


@compiles(ArrayAnyEquals, "postgresql")
def _array_any_pg(element: ArrayAnyEquals, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    path_sql = compiler.process(bindparam(None, list(element.path), type_=ARRAY(Text())), **kw)
    value = compiler.process(bindparam(None, element.value, type_=String()), **kw)
    doc = f"({column} #> {path_sql})"
    item = "lower(trim(je.v))" if element.fold_case else "je.v"
    return (
        f"EXISTS (SELECT 1 FROM jsonb_array_elements_text(CASE jsonb_typeof({doc}) "
        f"WHEN 'array' THEN {doc} WHEN 'string' THEN jsonb_build_array({doc}) "
        f"ELSE '[]'::jsonb END) AS je(v) WHERE {item} = {value})"
    )


def fold_text(expr: ColumnElement[str]) -> ColumnElement[str]:
    """Lower-cased and trimmed, as `equals` compares strings."""
    return func.lower(func.trim(expr))


__all__ = ["ArrayAnyEquals", "Float", "fold_text", "json_number", "json_text"]
