"""The columns of an export and each cell's value, written as its field's type.

Text that a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab, carriage
return first) is made inert wherever an export writes text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fold.db.models import Fieldset, Segment
from fold.errors import ValidationFailed
from fold.fields.display import value_at
from fold.fields.schema import TypeSchema
from fold.ids import is_uid, make_uri
from fold.segments.members import segment_schema
from fold.timefmt import parse_date, parse_datetime

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SYSTEM_COLUMNS = {
    "uid": ("Uid", "string"),
    "uri": ("URI", "string"),
    "display_value": ("Name", "string"),
    "resource_type": ("Type", "string"),
    "record_state": ("State", "string"),
    "created": ("Created", "datetime"),
    "last_updated": ("Last updated", "datetime"),
}


@dataclass(frozen=True)
class Column:
    path: str
    label: str
    type: str


@dataclass(frozen=True)
class Columns:
    columns: list[Column]
    fieldset: str | None  # the fieldset's name, None for the default columns


def inert(text: str) -> str:
    """Text no spreadsheet evaluates: a leading quote before a formula's first character."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def find_fieldset(session: Session, bucket: str, template: str) -> Fieldset | None:
    if is_uid(template):
        found = session.get(Fieldset, (bucket, template))
        if found is not None:
            return found
    return session.scalar(
        select(Fieldset).where(Fieldset.bucket == bucket, Fieldset.name == template).limit(1)
    )


def column(schema: TypeSchema, path: str) -> Column:
    if path in SYSTEM_COLUMNS:
        label, kind = SYSTEM_COLUMNS[path]
        return Column(path, label, kind)
    found = schema.fields.get(path)
    if found is None:
        return Column(path, path, "string")
    return Column(path, found.label, found.type)


def export_columns(
    session: Session, row: Segment, template: str | None, *, with_uri: bool = False
) -> Columns:
    """The fieldset named by `template` (name or uid), else the type's default columns:
    the display name and the type's list fields."""
    schema = segment_schema(session, bucket=row.bucket, resource_type=row.resource_type)
    lead = ["uri"] if with_uri else []
    if template:
        fieldset = find_fieldset(session, row.bucket, template)
        if fieldset is None:
            raise ValidationFailed(f"No fieldset {template!r} in this bucket.", param="template")
        paths = [*lead, *fieldset.fields]
        name: str | None = fieldset.name
    else:
        paths = [*lead, "display_value", *schema.list_fields]
        name = None
    return Columns([column(schema, p) for p in paths], name)


class Reader:
    """Reads one column's value from a record row, the way chosen once per export."""

    def __init__(self, column: Column) -> None:
        self.column = column
        path = column.path
        self.system = path in SYSTEM_COLUMNS
        self.parts = path.split(".")

    def __call__(self, record: Any) -> Any:
        path = self.column.path
        if self.system:
            if path == "uri":
                return make_uri(record.bucket, record.resource_type, record.uid)
            return getattr(record, path)
        node: Any = record.data
        for part in self.parts:
            if not isinstance(node, dict):
                return None
            node = node.get(part)
        return node


def typed(col: Column, value: Any) -> Any:
    """The value as its column's type: date, datetime, number, bool or text (None empty)."""
    if value is None or value == "":
        return None
    kind = col.type
    if kind == "string" and type(value) is str:
        return value
    try:
        if kind == "date" and isinstance(value, str):
            return parse_date(value)
        if kind == "datetime" and isinstance(value, str):
            return parse_datetime(value)
        if kind in ("date", "datetime") and isinstance(value, date | datetime):
            return value
        if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
            return value
        if kind == "boolean" and isinstance(value, bool):
            return value
    except ValueError:
        pass
    return text(value)


def text(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(text(v) for v in value if v is not None)
    if isinstance(value, dict):
        if set(value) == {"lat", "lng"}:
            return f"{value['lat']},{value['lng']}"
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value)


def row_values(readers: list[Reader], record: Any) -> list[Any]:
    return [typed(r.column, r(record)) for r in readers]


def address_lines(record: Any) -> list[str] | None:
    """The contact's name and postal address lines, or None without a postal address
    (a first address line and a town or postcode)."""
    data = record.data
    lines = [
        str(v).strip()
        for v in (value_at(data, f"address.{p}") for p in ADDRESS_PARTS)
        if v not in (None, "") and str(v).strip()
    ]
    line1 = value_at(data, "address.line1")
    town = value_at(data, "address.locality") or value_at(data, "address.postal_code")
    if not line1 or not town:
        return None
    return [record.display_value, *lines]


ADDRESS_PARTS = ("line1", "line2", "locality", "region", "postal_code", "country")
