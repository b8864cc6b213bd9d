"""`derived_from` names every field a record's derived values are read from: changing any
other field leaves display value, search text and unique key as they were (the set-based
job batches rely on it, fold.jobs.setwise)."""

from __future__ import annotations

from typing import Any

import pytest

from fold.fields.builtin import BUILTIN
from fold.fields.display import derived_from
from fold.records.service import derived

VALUES: list[Any] = ["Alpha", "x@example.org", 12.5, "2026-01-02", "GBP", None]


def full_document(resource_type: str, pick: int) -> dict[str, Any]:
    """A value in every field of the type (and some the schema does not name)."""
    doc: dict[str, Any] = {}
    for n, name in enumerate([*BUILTIN[resource_type].fields, "name", "tags", "note"]):
        value = VALUES[(n + pick) % len(VALUES)]
        parts = name.split(".")
        node = doc
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return doc


@pytest.mark.parametrize("resource_type", sorted(BUILTIN))
def test_other_fields_leave_derived_values_alone(resource_type: str) -> None:
    schema = BUILTIN[resource_type]
    read = derived_from(schema)
    for pick in range(len(VALUES)):
        doc = full_document(resource_type, pick)
        before = derived(schema, doc, "0" * 24)
        for field in [f for f in doc if f not in read]:
            changed = {**doc, field: "Changed value 99"}
            dropped = {k: v for k, v in doc.items() if k != field}
            assert derived(schema, changed, "0" * 24) == before, field
            assert derived(schema, dropped, "0" * 24) == before, field
