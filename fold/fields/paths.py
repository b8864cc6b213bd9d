"""Reading and writing dotted paths (`address.postal_code`) in a record document."""

from __future__ import annotations

import copy
import re
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


# The one spelling of a field path a client may send: dotted keys of letters, digits, `_`
# and `-`, each at most 100 characters, at most five deep. A document key is one step.
PATH_STEP = r"[A-Za-z0-9_-]{1,100}"
MAX_DEPTH = 5
FIELD_PATH_RE = re.compile(rf"^{PATH_STEP}(\.{PATH_STEP}){{0,{MAX_DEPTH - 1}}}$")
KEY_RE = re.compile(rf"^{PATH_STEP}$")


def is_field_path(value: object) -> bool:
    return isinstance(value, str) and FIELD_PATH_RE.match(value) is not None
