"""The human-readable sentence a segment's rules make, for `count` and previews.

Phrases follow the field's type: dates read as time ("joined date is in the last year"),
numbers as amounts ("amount is at least 100"), text alphabetically."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fold.fields.builtin import BUILTIN
from fold.fields.schema import TypeSchema, label_for
from fold.rules.ops import AGGREGATES, OPERATORS, SYSTEM, URI_LABEL
from fold.rules.values import RELATIVE_RE

UNITS = {"d": "day", "wk": "week", "m": "month", "y": "year"}
SYSTEM_LABELS = {"uri": URI_LABEL, **{name: s.label for name, s in SYSTEM.items()}}


def _show(value: Any) -> str:
    if isinstance(value, list):
        shown = [_show(v) for v in value]
        return ", ".join(shown[:-1]) + " or " + shown[-1] if len(shown) > 1 else "".join(shown)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _span(amount: int, unit: str) -> str:
    name = UNITS[unit]
    return f"a {name}" if amount == 1 else f"{amount} {name}s"


def _relative(operator: str, value: str) -> str | None:
    """Relative dates in words: 'in the last year', 'more than 30 days ago'."""
    match = RELATIVE_RE.match(value.strip().lower())
    if match is None:
        return None
    base, sign, amount, unit = match.groups()
    after = operator in ("greater_than", "greater_than_or_equals")
    if not amount or int(amount) == 0:
        moment = "today" if base == "today" else "now"
        if operator in ("equals", "exact"):
            return f"is {moment}"
        return f"is {'after' if after else 'before'} {moment}"
    span = _span(int(amount), unit)
    last = f"the last {UNITS[unit]}" if int(amount) == 1 else f"the last {span}"
    if sign == "-":
        return f"is in {last}" if after else f"is more than {span} ago"
    return f"is more than {span} from now" if after else f"is less than {span} from now"


def _kind(schema: TypeSchema, field: str, value: Any) -> str:
    if field in SYSTEM:
        return "date" if SYSTEM[field].kind == "datetime" else "string"
    declared = schema.field_type(field)
    if declared in ("date", "datetime"):
        return "date"
    if declared == "list":
        return "list"
    if declared == "number" or (declared is None and isinstance(value, int | float)):
        return "number"
    if declared is None and isinstance(value, str) and RELATIVE_RE.match(value.strip().lower()):
        return "date"
    return "string"


def _label(schema: TypeSchema, field: str) -> str:
    if field in SYSTEM_LABELS:
        return SYSTEM_LABELS[field]
    found = schema.fields.get(field)
    label = (found.label if found else label_for(field)).lower()
    if found and found.type in ("date", "datetime") and "date" not in label:
        label += " date"
    return label


def _related(
    rule: dict[str, Any],
    segment_names: dict[str, str],
    schema_of: Callable[[str], TypeSchema | None],
) -> str:
    """'with at least 2 payments whose date is in the last year', 'whose total amount of
    payments in segment 'Gift Aid' is at least 100'."""
    field, value = rule["field"], rule["value"]
    other = schema_of(field)
    one = other.name_singular.lower() if other else field
    many = other.name.lower() if other else field + "s"
    parts = [clause(other, r, segment_names, schema_of) for r in value["where"]] if other else []
    if value.get("segment"):
        parts.insert(0, f"in segment '{segment_names.get(value['segment'], value['segment'])}'")
    where = (" " + " and ".join(parts)) if parts else ""
    having = value["having"]
    if having == "any":
        return f"with at least one {one}{where}"
    if having == "none":
        return f"with no {one}{where}"
    if "at_least" in having or "at_most" in having:
        key, n = next(iter(having.items()))
        return f"with {key.replace('_', ' ')} {n} {one if n == 1 else many}{where}"
    aggregate = next(k for k in having if k in AGGREGATES)
    label = _label(other, having[aggregate]) if other else having[aggregate]
    phrase = OPERATORS[having["operator"]].phrase_for("number").format(v=_show(having["value"]))
    return f"whose {AGGREGATES[aggregate].phrase} {label} of {many}{where} {phrase}"


def clause(
    schema: TypeSchema,
    rule: dict[str, Any],
    segment_names: dict[str, str],
    schema_of: Callable[[str], TypeSchema | None] = BUILTIN.get,
) -> str:
    field, operator, value = rule["field"], rule["operator"], rule["value"]
    if operator == "raw":
        return "match a custom filter"
    if operator == "related":
        return _related(rule, segment_names, schema_of)
    if field == "segment":
        names = ", ".join(f"'{segment_names.get(v, v)}'" for v in value)
        verb = {
            "or_list": "are in any of",
            "and_list": "are in all of",
            "none_of": "are in none of",
        }
        plural = "segments" if len(value) > 1 else "segment"
        return f"{verb[operator]} the {plural} {names}"
    if operator == "near":
        where = value.get("postcode") or f"{value['lat']},{value['lng']}"
        distance = f"{value['distance']:g} {value['unit']}"
        return f"whose {_label(schema, field)} is within {distance} of {where}"
    kind = _kind(schema, field, value)
    phrase = None
    if kind == "date" and isinstance(value, str):
        phrase = _relative(operator, value)
    if phrase is None:
        phrase = OPERATORS[operator].phrase_for(kind).format(v=_show(value))
    return f"whose {_label(schema, field)} {phrase}"


def describe(
    schema: TypeSchema, rules: list[dict[str, Any]], segment_names: dict[str, str] | None = None
) -> str:
    """'People whose membership status is 'active' and whose town or city starts with 'Lon''."""
    if not rules:
        return f"All {schema.name.lower()}"
    clauses = [clause(schema, r, segment_names or {}) for r in rules]
    return f"{schema.name} " + " and ".join(clauses)


def _count(n: int, schema: TypeSchema) -> str:
    return f"1 {schema.name_singular.lower()}" if n == 1 else f"{n:,} {schema.name.lower()}"


def describe_segment(
    schema: TypeSchema,
    *,
    segment_type: str,
    rules: list[dict[str, Any]],
    include: int,
    exclude: int,
    parent: str | None = None,
    segment_names: dict[str, str] | None = None,
) -> str:
    """The sentence for a whole segment: its type, rules, lists and parent."""
    if segment_type == "auxiliary":
        return "A folder of segments; it holds no records itself"
    if segment_type == "static":
        text = f"A list of {_count(include, schema)}"
    else:
        text = describe(schema, rules, segment_names)
        if segment_type == "hybrid" and include:
            text += f", plus a list of {_count(include, schema)}"
    if exclude and segment_type != "dynamic":
        text += f", leaving out {_count(exclude, schema)}"
    if parent:
        text += f", within '{parent}'"
    return text
