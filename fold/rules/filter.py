"""The normalised filter document: plain JSON that both emitters read.

    {"and": [...]} {"or": [...]} {"not": node} {"const": true}
    {"field": "address.locality", "op": "eq_fold", "kind": "string", "value": "leeds",
     "any": false}
    {"near": {"field": "geo", "lat": 51.5, "lng": -0.12, "km": 10.0}}
    {"exists": "email"}   {"size": {"field": "tags", "n": 2}}
    {"listed": {"segment": "<uid>", "list": "include"}}

Fold's own columns (`uid`, `display_value`, `created`, `last_updated`) are fields like any
other here; the emitters map them to columns.
"""

from __future__ import annotations

from typing import Any

from fold.rules.ops import KM_PER_DEGREE, KM_PER_MILE, SYSTEM

Node = dict[str, Any]

SYSTEM_KINDS = {name: system.kind for name, system in SYSTEM.items()}
__all__ = ["KM_PER_DEGREE", "KM_PER_MILE", "SYSTEM_KINDS", "Node"]


def leaf(field: str, op: str, kind: str, value: Any, *, any: bool = False) -> Node:
    return {"field": field, "op": op, "kind": kind, "value": value, "any": any}


def all_of(nodes: list[Node]) -> Node:
    flat: list[Node] = []
    for node in nodes:
        if node == {"const": True}:
            continue
        if node == {"const": False}:
            return {"const": False}
        flat.extend(node.get("and", [node]))
    if not flat:
        return {"const": True}
    return flat[0] if len(flat) == 1 else {"and": flat}


def any_of(nodes: list[Node]) -> Node:
    flat: list[Node] = []
    for node in nodes:
        if node == {"const": False}:
            continue
        if node == {"const": True}:
            return {"const": True}
        flat.extend(node.get("or", [node]))
    if not flat:
        return {"const": False}
    return flat[0] if len(flat) == 1 else {"or": flat}


def negate(node: Node) -> Node:
    if "const" in node:
        return {"const": not node["const"]}
    if "not" in node:
        inner: Node = node["not"]
        return inner
    return {"not": node}
