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


# The one spelling of a field path: dotted keys of letters, digits, `_` and `-`. What a
# client may send has steps of at most 100 characters, at most five deep; a document key is
# one step. Other readers narrow or widen it through `field_path_pattern`'s parameters (the
# `raw` filter takes six levels of any length but no all-digit step, an array index).
STEP_CHARS = "[A-Za-z0-9_-]"
MAX_STEP = 100
MAX_DEPTH = 5


def field_path_pattern(
    *, max_depth: int = MAX_DEPTH, max_step: int | None = MAX_STEP, numeric_steps: bool = True
) -> re.Pattern[str]:
    """The pattern of a field path at most `max_depth` steps deep, each step at most
    `max_step` characters (None: no limit); `numeric_steps=False` refuses all-digit steps."""
    length = "+" if max_step is None else f"{{1,{max_step}}}"
    step = ("" if numeric_steps else r"(?!\d+(\.|$))") + STEP_CHARS + length
    return re.compile(rf"^{step}(\.{step}){{0,{max_depth - 1}}}$")


PATH_STEP = STEP_CHARS + f"{{1,{MAX_STEP}}}"
FIELD_PATH_RE = field_path_pattern()
KEY_RE = re.compile(rf"^{PATH_STEP}$")


def is_field_path(value: object) -> bool:
    return isinstance(value, str) and FIELD_PATH_RE.match(value) is not None


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
