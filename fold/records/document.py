"""Turning a client's JSON into a stored record document, with every problem collected."""

from __future__ import annotations

import copy
from typing import Any

from fold.errors import Problem
from fold.fields.paths import KEY_RE
from fold.fields.schema import FieldDef, TypeSchema
from fold.fields.types import read_value
from fold.ids import parse_uri

SYSTEM_FIELDS = frozenset(
    {"uid", "uri", "created", "last_updated", "record_state", "display_value", "resource_type"}
)
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


class _Walk:
    """One pass over a document: checks field names, depth, and reads each value that has a
    schema field as that field's type, in place."""

    def __init__(self, schema: TypeSchema, bucket: str, prefix: str) -> None:
        self.fields = schema.fields
        self.prefixes = schema.prefixes
        self.bucket = bucket
        self.prefix = prefix
        self.problems: list[Problem] = []

    def problem(self, description: str, path: str) -> None:
        self.problems.append(Problem(description, self.prefix + path))

    def object(self, node: dict[str, Any], path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.problem(f"nested deeper than {MAX_DEPTH} levels", path)
            return
        for key in list(node):
            child_path = f"{path}.{key}" if path else key
            if not KEY_RE.match(key):
                self.problem(
                    f"field name {key!r} may use only letters, digits, '_' and '-'", child_path
                )
                continue
            value = node[key]
            field = self.fields.get(child_path)
            if field is not None:
                cleaned = self.value(field, value, child_path)
                if cleaned is None:
                    del node[key]
                else:
                    node[key] = cleaned
                    if field.type == "object":
                        self.nested(cleaned, child_path, depth + 1)
                continue
            if isinstance(value, dict):
                self.object(value, child_path, depth + 1)
            elif child_path in self.prefixes and value is not None:
                self.problem(f"'{child_path}' must be an object of fields", child_path)
            elif isinstance(value, list):
                self.nested(value, child_path, depth + 1)

    def nested(self, value: Any, path: str, depth: int) -> None:
        """Objects inside lists and untyped objects: names and depth are checked only."""
        if depth > MAX_DEPTH:
            self.problem(f"nested deeper than {MAX_DEPTH} levels", path)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict | list):
                    self.nested(item, path, depth + 1)
        elif isinstance(value, dict):
            for key, item in value.items():
                if not KEY_RE.match(key):
                    self.problem(
                        f"field name {key!r} may use only letters, digits, '_' and '-'",
                        f"{path}.{key}",
                    )
                elif isinstance(item, dict | list):
                    self.nested(item, f"{path}.{key}", depth + 1)

    def value(self, field: FieldDef, value: Any, path: str) -> Any:
        if field.type == "string" and not field.choices and type(value) is str:
            return value  # the common case, kept cheap for bulk imports
        try:
            cleaned = read_value(field.type, value)
        except ValueError as exc:
            self.problem(f"{path}: {exc}", path)
            return value
        if cleaned is None:
            return None
        if field.type == "uri":
            uri = parse_uri(cleaned)
            if uri is not None and uri.bucket != self.bucket:
                self.problem(f"{path}: the URI belongs to another bucket", path)
        if field.choices and cleaned not in field.choices:
            allowed = ", ".join(field.choices)
            self.problem(f"{path}: {cleaned!r} is not one of {allowed}", path)
        return cleaned


def clean_document(
    raw: Any, schema: TypeSchema, bucket: str, *, where: str = ""
) -> tuple[dict[str, Any], list[Problem]]:
    """The stored form of `raw` and the problems found; the caller refuses if any.

    `raw` is freshly parsed input: its nested objects are reused and changed in place."""
    prefix = f"{where}." if where else ""
    if not isinstance(raw, dict):
        return {}, [Problem("a record must be a JSON object", where or None)]
    problems: list[Problem] = []
    data = expand_dotted({k: v for k, v in raw.items() if k not in SYSTEM_FIELDS}, problems)
    walk = _Walk(schema, bucket, prefix)
    walk.object(data, "", 0)
    return data, problems + walk.problems


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
