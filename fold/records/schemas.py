"""What the records API answers, for the OpenAPI document. Records carry their type's
fields beside Fold's own, so each model allows properties it does not name."""

from __future__ import annotations

from fold.schemas import Open, Page


class Record(Open):
    """A record: its fields as stored, and Fold's own."""

    uid: str
    uri: str
    resource_type: str
    created: str
    last_updated: str
    record_state: str
    display_value: str | None = None


class RecordPage(Page):
    results: list[Record]


class ResourceTypeSummary(Open):
    resource_type: str
    name: str
    count: int
    last_modified: str | None


class ResourceTypes(Open):
    bucket: str
    resource_types: list[ResourceTypeSummary]


class Field(Open):
    field: str
    type: str
    label: str
    form_type: str | None = None
    custom: bool


class TypeFields(Open):
    resource_type: str
    name: str
    name_singular: str
    fields: list[Field]
    search_fields: list[str]
    sort_by: list[str]
    list_fields: list[str]
    unique_field: str | None
    contact_field: str | None


class ImportProblem(Open):
    row: int
    error: str
    param: str | None


class ImportResult(Open):
    rows: int
    created: int
    updated: int
    failed: int
    errors: list[ImportProblem]
    errors_truncated: bool


class DisplayValue(Open):
    display_value: str | None
