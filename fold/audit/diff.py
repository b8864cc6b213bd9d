"""Field-level differences between two versions of a record."""

from __future__ import annotations

from typing import Any


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted paths to leaf values; lists count as leaves."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def clean_diff(prev: dict[str, Any] | None, new: dict[str, Any] | None) -> list[dict[str, Any]]:
    """`[{field, prev, value, verb}]` with verb `add`, `drop` or `change`, by field name."""
    if not prev or not new:  # a creation or a removal: every field added or dropped
        verb, side = ("add", new) if new else ("drop", prev)
        return [
            {"field": f, "prev": None if verb == "add" else v,
             "value": v if verb == "add" else None, "verb": verb}
            for f, v in sorted(flatten(side or {}).items())
        ]  # fmt: skip
    before = flatten(prev)
    after = flatten(new)
    changes: list[dict[str, Any]] = []
    for field in sorted(before.keys() | after.keys()):
        if field not in before:
            changes.append({"field": field, "prev": None, "value": after[field], "verb": "add"})
        elif field not in after:
            changes.append({"field": field, "prev": before[field], "value": None, "verb": "drop"})
        elif before[field] != after[field]:
            changes.append(
                {"field": field, "prev": before[field], "value": after[field], "verb": "change"}
            )
    return changes
