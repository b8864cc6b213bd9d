"""The rule language as a JSON Schema (draft 2020-12), published at
/segments/v2/schema/rules.json for editors and client libraries."""

from __future__ import annotations

from typing import Any

from fold.rules.compile import OPERATORS
from fold.rules.ops import AGGREGATES, COMPARISONS
from fold.rules.raw import FIELD_OPS

SCALAR = {"type": ["string", "number", "boolean"]}
FIELD_PATH = "^(uri|segment|[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+){0,5})?$"


def rules_schema() -> dict[str, Any]:
    rule = {
        "type": "object",
        "required": ["operator", "value"],
        "additionalProperties": False,
        "properties": {
            "field": {
                "type": "string",
                "pattern": FIELD_PATH,
                "description": "A dotted path into the record, a system field (uid, uri, "
                "created, last_updated, display_value), 'segment' for membership, or for "
                "`related` the type of the related records (payment, membership, booking, "
                "group_member; person for organisations).",
            },
            "operator": {"enum": list(OPERATORS)},
            "value": {
                "description": "A value of the field's type; a list (or comma-separated "
                "text) for or_list, and_list and none_of; 'lat,lng,distance' or "
                "'POSTCODE,distance' (km, or 'mi') for near; a filter document for raw; "
                "{where, segment, having} for related. "
                "Dates also take today, now, today-30d, now+2wk, today-1y (d, wk, m, y).",
                "anyOf": [
                    SCALAR,
                    {"type": "array", "items": SCALAR},
                    {"$ref": "#/$defs/near"},
                    {"$ref": "#/$defs/filter"},
                    {"$ref": "#/$defs/related"},
                ],
            },
        },
    }
    filter_doc = {
        "type": "object",
        "description": "A MongoDB-style filter document. Operators: "
        + ", ".join(["$and", "$or", "$nor", *FIELD_OPS]),
        "propertyNames": {"pattern": "^(\\$(and|or|nor|not)|[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*)$"},
    }
    near = {
        "type": "object",
        "required": ["distance"],
        "properties": {
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "lng": {"type": "number", "minimum": -180, "maximum": 180},
            "postcode": {"type": "string"},
            "distance": {"type": ["number", "string"]},
            "unit": {"enum": ["km", "mi"]},
        },
    }
    aggregate = {
        "type": "object",
        "description": "The sum, smallest or largest value of a number field over the "
        "related records, compared with a number (a sum over none is 0; a smallest or "
        "largest over none never compares).",
        "minProperties": 3,
        "maxProperties": 3,
        "required": ["operator", "value"],
        "properties": {
            **{name: {"type": "string"} for name in AGGREGATES if name != "count"},
            "operator": {"enum": list(COMPARISONS)},
            "value": {"type": ["number", "string"]},
        },
        "additionalProperties": False,
    }
    related = {
        "type": "object",
        "description": "Records of another type linked to this one (a payment's contact, "
        "a person's organisation): those meeting `where` (rules on that type) and in "
        "`segment`, counted or aggregated as `having` asks (default 'any').",
        "additionalProperties": False,
        "properties": {
            "via": {
                "type": "string",
                "description": "The related type's link field naming this record "
                "(default: the link the schemas declare, e.g. a payment's contact)",
            },
            "where": {"type": "array", "items": {"$ref": "#/$defs/rule"}},
            "segment": {"type": "string", "description": "A segment URI of the related type"},
            "having": {
                "anyOf": [
                    {"enum": ["any", "none"]},
                    {
                        "type": "object",
                        "properties": {"at_least": {"type": "integer", "minimum": 0}},
                        "required": ["at_least"],
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "properties": {"at_most": {"type": "integer", "minimum": 0}},
                        "required": ["at_most"],
                        "additionalProperties": False,
                    },
                    aggregate,
                ]
            },
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "/segments/v2/schema/rules.json",
        "title": "Fold segment rules",
        "description": "All rules must hold. Send an array of rules or the object form "
        "{match: 'all', conditions: [...]}.",
        "oneOf": [
            {"type": "array", "items": {"$ref": "#/$defs/rule"}},
            {
                "type": "object",
                "required": ["conditions"],
                "properties": {
                    "match": {"const": "all"},
                    "conditions": {"type": "array", "items": {"$ref": "#/$defs/rule"}},
                },
            },
        ],
        "$defs": {"rule": rule, "near": near, "filter": filter_doc, "related": related},
    }
