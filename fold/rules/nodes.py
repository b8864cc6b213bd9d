"""The filter document read into typed nodes. Each engine (fold.rules.sql, fold.rules.python,
fold.columns.vector) dispatches on these with `match` and ends with `assert_never`, so mypy
refuses an engine that forgets a kind of node."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, assert_never

from fold.rules.filter import Node
from fold.rules.ops import SYSTEM, TESTS, SystemField, Test


@dataclass(frozen=True)
class And:
    parts: tuple[Typed, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Typed, ...]


@dataclass(frozen=True)
class Not:
    part: Typed


@dataclass(frozen=True)
class Const:
    value: bool


@dataclass(frozen=True)
class Leaf:
    """A test of the value at a document path (`any`: of any element of a list there)."""

    field: str
    test: Test
    kind: str
    value: Any
    any: bool


@dataclass(frozen=True)
class SystemLeaf:
    """A test of one of Fold's own fields, compared as the field's kind."""

    field: SystemField
    test: Test
    value: Any  # as the rule gave it (text for moments)


@dataclass(frozen=True)
class Near:
    field: str
    lat: float
    lng: float
    km: float


@dataclass(frozen=True)
class Exists:
    field: str


@dataclass(frozen=True)
class Size:
    field: str
    n: int


@dataclass(frozen=True)
class Listed:
    segment: str
    list: str  # "include" or "exclude"


@dataclass(frozen=True)
class Having:
    """What a related-record rule asks of the related records that pass its filter: their
    count, or the sum, min or max of a numeric field over them, compared with a number."""

    aggregate: str  # count | sum | min | max
    field: str | None  # the numeric field summed (None for count)
    test: Test  # a comparison of TESTS (gt, gte, lt, lte, eq)
    value: float


@dataclass(frozen=True)
class Related:
    """The records of `type` whose `link` field holds this record's URI, filtered by
    `filter`, and what `having` asks of them."""

    type: str
    link: str
    filter: Typed
    having: Having


Typed = And | Or | Not | Const | Leaf | SystemLeaf | Near | Exists | Size | Listed | Related


def typed(node: Node) -> Typed:
    """A filter document (plain JSON) as typed nodes."""
    if "and" in node:
        return And(tuple(typed(n) for n in node["and"]))
    if "or" in node:
        return Or(tuple(typed(n) for n in node["or"]))
    if "not" in node:
        return Not(typed(node["not"]))
    if "const" in node:
        return Const(bool(node["const"]))
    if "near" in node:
        near = node["near"]
        return Near(near["field"], near["lat"], near["lng"], near["km"])
    if "exists" in node:
        return Exists(node["exists"])
    if "size" in node:
        return Size(node["size"]["field"], int(node["size"]["n"]))
    if "listed" in node:
        return Listed(node["listed"]["segment"], node["listed"]["list"])
    if "related" in node:
        related = node["related"]
        having = related["having"]
        return Related(
            related["type"],
            related["link"],
            typed(related["filter"]),
            Having(having["aggregate"], having.get("field"), TESTS[having["op"]], having["value"]),
        )
    test = TESTS[node["op"]]
    if node["field"] in SYSTEM:
        return SystemLeaf(SYSTEM[node["field"]], test, node["value"])
    return Leaf(node["field"], test, node["kind"], node["value"], bool(node.get("any")))


def paths(node: Typed) -> set[str]:
    """The fields a filter reads: document paths, and Fold's own fields by name."""
    match node:
        case And(parts) | Or(parts):
            out: set[str] = set()
            for part in parts:
                out |= paths(part)
            return out
        case Not(part):
            return paths(part)
        case Near(field=field):
            return {f"{field}.lat", f"{field}.lng"}
        case Exists(field) | Size(field, _):
            return {field}
        case Leaf(field=field):
            return {field}
        case SystemLeaf(field=system):
            return {system.name}
        case Const() | Listed() | Related():
            return set()
        case _:
            assert_never(node)


def related_paths(node: Typed, out: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """For each related type a filter reaches (through related rules, at any depth): the
    document paths read of it, the link and aggregated fields included."""
    out = {} if out is None else out
    match node:
        case And(parts) | Or(parts):
            for part in parts:
                related_paths(part, out)
        case Not(part):
            related_paths(part, out)
        case Related(kind, link, inner, having):
            wanted = out.setdefault(kind, set())
            wanted |= paths(inner) | {link}
            if having.field is not None:
                wanted.add(having.field)
            related_paths(inner, out)
        case Const() | SystemLeaf() | Listed() | Leaf() | Near() | Exists() | Size():
            pass
        case _:
            assert_never(node)
    return out
