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
    Size,
    SystemLeaf,
    Typed,
    typed,
)
from fold.rules.ops import argument, kind_of, near_python

Lists = Callable[[str, str], set[str]]  # (segment uid, "include"|"exclude") -> record uids


def matches(node: Node, record: dict[str, Any], lists: Lists) -> bool:
    return holds(typed(node), record, lists)


def holds(node: Typed, record: dict[str, Any], lists: Lists) -> bool:
    match node:
        case And(parts):
            return all(holds(n, record, lists) for n in parts)
        case Or(parts):
            return any(holds(n, record, lists) for n in parts)
        case Not(part):
            return not holds(part, record, lists)
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
        case _:
            assert_never(node)
