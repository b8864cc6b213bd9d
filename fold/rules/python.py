"""The in-Python twin of fold.rules.sql: the same filter document, evaluated on one record
(as the API returns it). Used by explain, and held to the SQL's answers by the tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fold.fields.paths import MISSING, get_path
from fold.rules.filter import SYSTEM_KINDS, Node
from fold.rules.ops import OPS, kind_of
from fold.rules.sql import TINY, near_factors

Lists = Callable[[str, str], set[str]]  # (segment uid, "include"|"exclude") -> record uids


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def matches(node: Node, record: dict[str, Any], lists: Lists) -> bool:
    if "and" in node:
        return all(matches(n, record, lists) for n in node["and"])
    if "or" in node:
        return any(matches(n, record, lists) for n in node["or"])
    if "not" in node:
        return not matches(node["not"], record, lists)
    if "const" in node:
        return bool(node["const"])
    if "near" in node:
        return _near(node["near"], record)
    if "exists" in node:
        return get_path(record, node["exists"]) not in (MISSING, None)
    if "size" in node:
        value = get_path(record, node["size"]["field"])
        return isinstance(value, list) and len(value) == node["size"]["n"]
    if "listed" in node:
        listed = node["listed"]
        return record["uid"] in lists(listed["segment"], listed["list"])
    return _leaf(node, record)


def _leaf(node: Node, record: dict[str, Any]) -> bool:
    op = OPS[node["op"]]
    field, kind, arg = node["field"], node["kind"], node["value"]
    value = get_path(record, field)
    if field in SYSTEM_KINDS:
        return value is not MISSING and op.python(value, arg, kind)
    if node["any"]:
        candidates = (
            value if isinstance(value, list) else [] if isinstance(value, dict) else [value]
        )
    else:
        candidates = [value]
    return any(kind_of(c) == kind and op.python(c, arg, kind) for c in candidates)


def _clamp(offset: float) -> float:
    return 0.0 if abs(offset) < TINY else offset


def _near(near: dict[str, Any], record: dict[str, Any]) -> bool:
    lat = _number(get_path(record, f"{near['field']}.lat"))
    lng = _number(get_path(record, f"{near['field']}.lng"))
    if lat is None or lng is None:
        return False
    k_lat, k_lng = near_factors(near["lat"])
    dy = _clamp((lat - near["lat"]) * k_lat)
    dx = _clamp((lng - near["lng"]) * k_lng)
    limit: float = near["km"] * near["km"]
    return bool(dy * dy + dx * dx <= limit)
