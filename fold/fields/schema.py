"""The shape of a resource type's field schema, and the lookup that adds custom fields."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

FORM_TYPES = {
    "string": "text",
    "number": "number",
    "boolean": "checkbox",
    "date": "date",
    "datetime": "datetime",
    "list": "tags",
    "geo": "location",
    "uri": "reference",
    "object": "json",
}


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    label: str
    form_type: str
    choices: tuple[str, ...] = ()
    custom: bool = False


@dataclass(frozen=True)
class TypeSchema:
    resource_type: str
    name: str
    name_singular: str
    prefix: str
    fields: dict[str, FieldDef]
    search_fields: tuple[str, ...]
    sort_by: tuple[str, ...]
    list_fields: tuple[str, ...]
    unique_field: str | None = None
    contact_field: str | None = None
    status_field: str | None = None
    search_placeholder: str = "Search"

    @cached_property
    def prefixes(self) -> frozenset[str]:
        """Every dotted prefix of a field (`address` for `address.locality`)."""
        out: set[str] = set()
        for path in self.fields:
            parts = path.split(".")
            out.update(".".join(parts[:i]) for i in range(1, len(parts)))
        return frozenset(out)

    def field_type(self, path: str) -> str | None:
        found = self.fields.get(path)
        return found.type if found else None

    def with_custom(self, custom: list[FieldDef]) -> TypeSchema:
        if not custom:
            return self
        merged = dict(self.fields)
        for item in custom:
            merged.setdefault(item.name, item)
        return replace(self, fields=merged)


def label_for(path: str) -> str:
    return path.split(".")[-1].replace("_", " ").capitalize()


def f(path: str, type_: str, label: str | None = None, choices: tuple[str, ...] = ()) -> FieldDef:
    """A built-in field; the label and form type follow from the name and type."""
    return FieldDef(path, type_, label or label_for(path), FORM_TYPES[type_], choices)
