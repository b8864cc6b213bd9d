"""What compiling rules needs to know from outside: the field schema, other segments,
postcodes and the time. The service layer fills it from the database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from fold.fields.builtin import BUILTIN
from fold.fields.schema import TypeSchema

CONTACT_TYPES = ("person", "organisation", "contact")


@dataclass(frozen=True)
class SegmentDef:
    """A segment as the compiler sees it."""

    uid: str
    resource_type: str
    segment_type: str
    rules: list[dict[str, Any]]
    parent_uid: str | None = None
    deleted: bool = False
    name: str = ""


@dataclass
class Context:
    bucket: str
    resource_type: str
    schema: TypeSchema
    now: datetime
    segment: Callable[[str], SegmentDef | None] = lambda uid: None
    postcode: Callable[[str], tuple[float, float] | None] = lambda code: None
    self_uid: str | None = None
    # The field schema of another stored type (for related-record rules).
    schema_of: Callable[[str], TypeSchema | None] = lambda resource_type: BUILTIN.get(resource_type)

    def related(self, resource_type: str) -> Context:
        """The context rules on the related records of `resource_type` are read in."""
        schema = self.schema_of(resource_type)
        assert schema is not None
        return replace(self, resource_type=resource_type, schema=schema, self_uid=None)

    def link(self, resource_type: str) -> str | None:
        """The field of `resource_type` that links its records to this context's: a field
        named after this type that holds URIs (a person's `organisation`), or, for people,
        organisations and contacts, the type's declared contact field (a payment's
        `contact`). None: the schemas declare no link."""
        schema = self.schema_of(resource_type)
        if schema is None or resource_type == "contact":
            return None
        if schema.field_type(self.resource_type) == "uri":
            return self.resource_type
        if self.resource_type in CONTACT_TYPES and schema.contact_field:
            return schema.contact_field
        return None

    def linked_types(self) -> list[str]:
        """Every stored type whose records link to this context's, by `link`."""
        from fold.ids import STORED_TYPES

        return [t for t in STORED_TYPES if self.link(t) is not None]
