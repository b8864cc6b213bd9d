"""Golden files: each operator's rule, its normalised form, its filter document, and the
SQL both dialects compile it to. FOLD_UPDATE_GOLDEN=1 rewrites the file after a deliberate
change; review the diff."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from fold.db.models import Record
from fold.fields.builtin import BUILTIN
from fold.rules.compile import normalise, rules_filter
from fold.rules.context import Context, SegmentDef
from fold.rules.sql import to_sql

GOLDEN = Path(__file__).with_name("golden_filters.json")
NOW = datetime(2026, 6, 15, 12, 30)
OTHER = SegmentDef(
    "b" * 24, "person", "dynamic", [{"field": "tags", "operator": "equals", "value": "x"}]
)
GIFT_AID = SegmentDef(
    "c" * 24, "payment", "dynamic", [{"field": "gift_aid", "operator": "equals", "value": True}]
)
LAST_YEAR = [{"field": "date", "operator": "greater_than_or_equals", "value": "today-1y"}]


def related(field: str, **value: Any) -> list[dict[str, Any]]:
    return [{"field": field, "operator": "related", "value": value}]


CASES: dict[str, list[dict[str, Any]]] = {
    "equals": [{"field": "address.locality", "operator": "equals", "value": " London "}],
    "equals_list_field": [{"field": "tags", "operator": "equals", "value": "Donor"}],
    "equals_undeclared": [{"field": "extras.code", "operator": "equals", "value": 7}],
    "exact": [{"field": "first_name", "operator": "exact", "value": "Ada"}],
    "not_equal_to": [{"field": "email_opt_out", "operator": "not_equal_to", "value": "yes"}],
    "greater_than": [{"field": "joined", "operator": "greater_than", "value": "2020-01-01"}],
    "greater_than_or_equals": [
        {"field": "date_of_birth", "operator": "greater_than_or_equals", "value": "today-30y"}
    ],
    "less_than": [{"field": "mailchimp_last_sync", "operator": "less_than", "value": "now-2wk"}],
    "less_than_or_equals": [
        {"field": "created", "operator": "less_than_or_equals", "value": "2026-01-01"}
    ],
    "starts_with": [{"field": "address.postal_code", "operator": "starts_with", "value": "SW1%"}],
    "starts_with_case_insensitive": [
        {"field": "last_name", "operator": "starts_with_case_insensitive", "value": "mac"}
    ],
    "ends_with": [{"field": "email", "operator": "ends_with", "value": "@example.org"}],
    "or_list": [{"field": "tags", "operator": "or_list", "value": "donor, volunteer"}],
    "and_list": [{"field": "tags", "operator": "and_list", "value": ["donor", "volunteer"]}],
    "none_of": [
        {"field": "membership_status", "operator": "none_of", "value": ["lapsed", "cancelled"]}
    ],
    "near": [{"field": "", "operator": "near", "value": "51.5,-0.12,5mi"}],
    "near_postcode": [{"field": "geo", "operator": "near", "value": "SW1A 1AA,10"}],
    "raw": [
        {
            "field": "",
            "operator": "raw",
            "value": {
                "$or": [
                    {"tags": {"$all": ["a", "b"]}},
                    {"score": {"$gte": 3, "$lt": 10}},
                    {"email": {"$exists": False}},
                    {"tags": {"$size": 2}},
                    {"last_name": {"$regex": "^Mac", "$options": "i"}},
                    {"$nor": [{"source": {"$in": ["web", "event"]}}]},
                    {"first_name": {"$not": {"$eq": "Bo"}}},
                ]
            },
        }
    ],
    "uri": [{"field": "uri", "operator": "or_list", "value": [f"/b1/person/{'a' * 24}"]}],
    "segment": [{"field": "segment", "operator": "none_of", "value": [f"/b1/segment/{'b' * 24}/"]}],
    "related_any": related("payment", where=LAST_YEAR),
    "related_none": related(
        "membership",
        where=[{"field": "status", "operator": "equals", "value": "lapsed"}],
        having="none",
    ),
    "related_at_least": related("booking", having={"at_least": 2}),
    "related_at_most": related("group_member", having={"at_most": 1}),
    "related_sum": related(
        "payment",
        where=LAST_YEAR,
        having={"sum": "amount", "operator": "greater_than_or_equals", "value": 100},
    ),
    "related_min": related(
        "payment", having={"min": "amount", "operator": "less_than", "value": 5}
    ),
    "related_max": related(
        "membership", having={"max": "amount", "operator": "equals", "value": "60"}
    ),
    "related_segment": related("payment", segment=f"/b1/segment/{'c' * 24}/"),
    "organisation:related_people": related(
        "person",
        where=[{"field": "membership_status", "operator": "equals", "value": "active"}],
        having={"at_least": 3},
    ),
}
SEGMENTS = {s.uid: s for s in (OTHER, GIFT_AID)}


def context(resource_type: str = "person") -> Context:
    return Context(
        bucket="b1",
        resource_type=resource_type,
        schema=BUILTIN[resource_type],
        now=NOW,
        segment=SEGMENTS.get,
        postcode=lambda code: (51.501, -0.142) if code == "SW1A 1AA" else None,
    )


def compiled(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    ctx = context(name.split(":")[0] if ":" in name else "person")
    normalised, problems = normalise(rules, ctx)
    assert problems == []
    node = rules_filter(normalised, ctx)
    stmt = select(Record.uid).where(to_sql(node, bucket="b1"))
    return {
        "rules": rules,
        "normalised": normalised,
        "filter": node,
        "sql": {
            name: " ".join(str(stmt.compile(dialect=dialect)).split())
            for name, dialect in (
                ("sqlite", sqlite.dialect()),
                ("postgresql", postgresql.dialect()),
            )
        },
    }


def test_golden_filters() -> None:
    actual = {name: compiled(name, rules) for name, rules in CASES.items()}
    if os.environ.get("FOLD_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    for name in CASES:
        assert actual[name] == expected[name], name


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_operator_has_a_golden_case(name: str) -> None:
    from fold.rules.compile import OPERATORS

    covered = {r["operator"] for rules in CASES.values() for r in rules}
    assert set(OPERATORS) <= covered
