"""Reading and writing dotted paths (`address.postal_code`) in a record document."""

from __future__ import annotations

import copy
from typing import Any

MISSING: Any = object()  # no value at the path, as distinct from a stored null


def get_path(data: dict[str, Any], path: str) -> Any:
    """The value at `path`, or MISSING where any step is absent or not an object."""
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def set_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `data` with `path` set; MISSING or None removes it."""
    out = copy.deepcopy(data)
    parts = path.split(".")
    node = out
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            if value is MISSING or value is None:
                return out
            child = {}
            node[part] = child
        node = child
    if value is MISSING or value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    return out


def with_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """As `set_path`, but copying only the objects along `path`: the rest is shared with
    `data`. For bulk rewrites that neither side mutates afterwards."""
    parts = path.split(".")
    out = dict(data)
    node = out
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            if value is MISSING or value is None:
                return out
            child = {}
        else:
            child = dict(child)
        node[part] = child
        node = child
    if value is MISSING or value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    return out
