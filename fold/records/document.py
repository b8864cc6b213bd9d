"""Turning a client's JSON into a stored record document, with every problem collected."""

from __future__ import annotations

import copy
import re
from typing import Any

from fold.errors import Problem
from fold.fields.schema import TypeSchema
from fold.fields.types import read_value
from fold.ids import parse_uri

SYSTEM_FIELDS = frozenset(
    {"uid", "uri", "created", "last_updated", "record_state", "display_value", "resource_type"}
)
KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
MAX_DEPTH = 8


def expand_dotted(data: dict[str, Any], problems: list[Problem]) -> dict[str, Any]:
    """`{"address.postal_code": x}` becomes `{"address": {"postal_code": x}}`."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if "." not in key:
            if isinstance(out.get(key), dict) and isinstance(value, dict):
                out[key].update(value)
            else:
                out[key] = value
            continue
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                problems.append(Problem(f"'{key}' conflicts with the value of '{part}'", key))
                break
            node = child
        else:
            node[parts[-1]] = value
    return out


def _check_keys(value: Any, path: str, depth: int, problems: list[Problem]) -> None:
    if depth > MAX_DEPTH:
        problems.append(Problem(f"nested deeper than {MAX_DEPTH} levels", path))
        return
    if isinstance(value, dict):
        for key, child in value.items():
            child_path = f"{path}.{key}" if path else key
            if not KEY_RE.match(key):
                problems.append(
                    Problem(
                        f"field name {key!r} may use only letters, digits, '_' and '-'",
                        child_path,
                    )
                )
                continue
            _check_keys(child, child_path, depth + 1, problems)
    elif isinstance(value, list):
        for item in value:
            _check_keys(item, path, depth + 1, problems)


def _set_at(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        node = node[part]
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def _locate(data: dict[str, Any], path: str) -> tuple[bool, Any, str | None]:
    """(present, value, blocking_prefix): where a non-object sits on the path, its prefix."""
    node: Any = data
    parts = path.split(".")
    for index, part in enumerate(parts):
        if not isinstance(node, dict):
            return False, None, ".".join(parts[:index])
        if part not in node:
            return False, None, None
        node = node[part]
    return True, node, None


def clean_document(
    raw: Any, schema: TypeSchema, bucket: str, *, where: str = ""
) -> tuple[dict[str, Any], list[Problem]]:
    """The stored form of `raw` and the problems found; the caller refuses if any."""
    problems: list[Problem] = []
    prefix = f"{where}." if where else ""
    if not isinstance(raw, dict):
        return {}, [Problem("a record must be a JSON object", where or None)]
    data = expand_dotted({k: v for k, v in raw.items() if k not in SYSTEM_FIELDS}, problems)
    data = copy.deepcopy(data)
    _check_keys(data, "", 0, problems)
    for path, field in schema.fields.items():
        present, value, blocked = _locate(data, path)
        if blocked is not None:
            problems.append(
                Problem(f"'{blocked}' must be an object holding '{path}'", prefix + blocked)
            )
            continue
        if not present:
            continue
        try:
            cleaned = read_value(field.type, value)
        except ValueError as exc:
            problems.append(Problem(f"{path}: {exc}", prefix + path))
            continue
        if field.type == "uri" and cleaned is not None:
            uri = parse_uri(cleaned)
            if uri is not None and uri.bucket != bucket:
                problems.append(
                    Problem(f"{path}: the URI belongs to another bucket", prefix + path)
                )
                continue
        if field.choices and cleaned is not None and cleaned not in field.choices:
            allowed = ", ".join(field.choices)
            problems.append(Problem(f"{path}: {cleaned!r} is not one of {allowed}", prefix + path))
            continue
        _set_at(data, path, cleaned)
    return data, problems


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 merge: objects merge key by key, null removes a key, the rest replaces."""
    out = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
