"""The in-Python twin of fold.rules.sql: the same filter document, evaluated on one record
(as the API returns it). Used by explain, and held to the SQL's answers by the tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, assert_never

from fold.fields.paths import MISSING, get_path
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
from fold.rules.ops import AGGREGATES, argument, kind_of, near_python

Lists = Callable[[str, str], set[str]]  # (segment uid, "include"|"exclude") -> record uids
# (related type, link field, record) -> the active records of that type linked to it
Linked = Callable[[str, str, dict[str, Any]], list[dict[str, Any]]]


def no_links(resource_type: str, link: str, record: dict[str, Any]) -> list[dict[str, Any]]:
    return []


def matches(node: Node, record: dict[str, Any], lists: Lists, linked: Linked = no_links) -> bool:
    return holds(typed(node), record, lists, linked)


def holds(node: Typed, record: dict[str, Any], lists: Lists, linked: Linked = no_links) -> bool:
    match node:
        case And(parts):
            return all(holds(n, record, lists, linked) for n in parts)
        case Or(parts):
            return any(holds(n, record, lists, linked) for n in parts)
        case Not(part):
            return not holds(part, record, lists, linked)
        case Const(value):
            return value
        case Near(field, lat, lng, km):
            lat_value = get_path(record, f"{field}.lat")
            lng_value = get_path(record, f"{field}.lng")
            return near_python(lat_value, lng_value, lat, lng, km)
        case Exists(field):
            return get_path(record, field) not in (MISSING, None)
        case Size(field, n):
            value = get_path(record, field)
            return isinstance(value, list) and len(value) == n
        case Listed(segment, kind):
            return record["uid"] in lists(segment, kind)
        case SystemLeaf(system, test, value):
            kind = system.kind
            return test.python(system.python(record), argument(value, kind), kind)
        case Leaf(field, test, kind, value, many):
            found = get_path(record, field)
            if many:
                candidates = (
                    found if isinstance(found, list) else [] if isinstance(found, dict) else [found]
                )
            else:
                candidates = [found]
            return any(kind_of(c) == kind and test.python(c, value, kind) for c in candidates)
        case Related():
            passing = [
                r
                for r in linked(node.type, node.link, record)
                if holds(node.filter, r, lists, linked)
            ]
            return related_holds(node, passing)
        case _:
            assert_never(node)


def aggregate_of(node: Related, passing: list[dict[str, Any]]) -> float | None:
    """The count or aggregate a related rule compares, over the related records that
    pass its filter (numbers only: a missing or non-numeric value is left out)."""
    having = node.having
    aggregate = AGGREGATES[having.aggregate]
    if having.field is None:
        return aggregate.python([1.0] * len(passing))
    numbers = [get_path(r, having.field) for r in passing]
    return aggregate.python([float(n) for n in numbers if kind_of(n) == "number"])


def related_holds(node: Related, passing: list[dict[str, Any]]) -> bool:
    value = aggregate_of(node, passing)
    return value is not None and node.having.test.python(value, node.having.value, "number")
