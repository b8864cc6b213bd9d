"""The human-readable sentence a segment's rules make, for `count` and previews."""

from __future__ import annotations

from typing import Any

from fold.fields.schema import TypeSchema, label_for

PHRASES = {
    "equals": "is {v}",
    "exact": "is exactly {v}",
    "not_equal_to": "is not {v}",
    "greater_than": "is after/above {v}",
    "greater_than_or_equals": "is {v} or after/above",
    "less_than": "is before/below {v}",
    "less_than_or_equals": "is {v} or before/below",
    "starts_with": "starts with {v}",
    "starts_with_case_insensitive": "starts with {v} (any case)",
    "or_list": "is any of {v}",
    "and_list": "includes all of {v}",
    "none_of": "is none of {v}",
}


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)


def _label(schema: TypeSchema, field: str) -> str:
    found = schema.fields.get(field)
    return (found.label if found else label_for(field)).lower()


def clause(schema: TypeSchema, rule: dict[str, Any], segment_names: dict[str, str]) -> str:
    field, operator, value = rule["field"], rule["operator"], rule["value"]
    if operator == "raw":
        return "match a custom filter"
    if field == "segment":
        names = ", ".join(f"'{segment_names.get(v, v)}'" for v in value)
        verb = {
            "or_list": "are in any of",
            "and_list": "are in all of",
            "none_of": "are in none of",
        }
        return f"{verb[operator]} the segments {names}"
    if operator == "near":
        where = value.get("postcode") or f"{value['lat']},{value['lng']}"
        distance = f"{value['distance']:g} {value['unit']}"
        return f"whose {_label(schema, field)} is within {distance} of {where}"
    return f"whose {_label(schema, field)} {PHRASES[operator].format(v=_show(value))}"


def describe(
    schema: TypeSchema, rules: list[dict[str, Any]], segment_names: dict[str, str] | None = None
) -> str:
    """'People whose membership status is 'active' and whose town or city starts with 'Lon''."""
    if not rules:
        return f"All {schema.name.lower()}"
    clauses = [clause(schema, r, segment_names or {}) for r in rules]
    return f"{schema.name} " + " and ".join(clauses)
