"""Filter document → SQLAlchemy Core boolean expression over the records table.

A test that cannot hold (missing field, wrong kind) is NULL or false in SQL; `not` wraps
its operand in coalesce(…, false) so that a missing field satisfies the negation, as in
Python."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, func, not_, or_, select, true
from sqlalchemy.sql.functions import coalesce

from fold.db.jsonsql import ColumnTest, JsonNumber, JsonShape, JsonTest
from fold.db.models import Record, SegmentUri
from fold.rules.filter import KM_PER_DEGREE, SYSTEM_KINDS, Node
from fold.rules.ops import OPS
from fold.timefmt import parse_datetime

COLUMNS: dict[str, Any] = {
    "uid": Record.uid,
    "display_value": Record.display_value,
    "created": Record.created,
    "last_updated": Record.last_updated,
}


def to_sql(node: Node, *, bucket: str) -> ColumnElement[bool]:
    if "and" in node:
        return and_(*[to_sql(n, bucket=bucket) for n in node["and"]])
    if "or" in node:
        return or_(*[to_sql(n, bucket=bucket) for n in node["or"]])
    if "not" in node:
        return not_(coalesce(to_sql(node["not"], bucket=bucket), false()))
    if "const" in node:
        return true() if node["const"] else false()
    if "near" in node:
        return _near(node["near"])
    if "exists" in node:
        return JsonShape(Record.data, node["exists"], "exists")
    if "size" in node:
        return JsonShape(Record.data, node["size"]["field"], "size", node["size"]["n"])
    if "listed" in node:
        listed = node["listed"]
        members = select(SegmentUri.record_uid).where(
            SegmentUri.bucket == bucket,
            SegmentUri.segment_uid == listed["segment"],
            SegmentUri.kind == listed["list"],
        )
        return Record.uid.in_(members)
    return _leaf(node)


def _leaf(node: Node) -> ColumnElement[bool]:
    op = OPS[node["op"]]
    field, kind, value = node["field"], node["kind"], node["value"]
    if field in SYSTEM_KINDS:
        column = COLUMNS[field]
        if SYSTEM_KINDS[field] == "datetime":
            when = (
                [parse_datetime(v) for v in value]
                if isinstance(value, list)
                else parse_datetime(value)
            )
            return ColumnTest(column, lambda e, d: op.sql(e, when, "datetime", d))
        return ColumnTest(column, lambda e, d: op.sql(e, value, kind, d))

    def predicate(expr: ColumnElement[Any], dialect: str) -> ColumnElement[bool]:
        return op.sql(expr, value, kind, dialect)

    return JsonTest(Record.data, field, kind, predicate, any=node["any"])


TINY = 1e-100


def clamp(expr: ColumnElement[Any]) -> ColumnElement[Any]:
    """Offsets too small to matter are 0: PostgreSQL refuses to square a subnormal."""
    return case((func.abs(expr) < TINY, 0.0), else_=expr)


def near_factors(lat: float) -> tuple[float, float]:
    """km per degree of latitude and of longitude at `lat` (equirectangular)."""
    return KM_PER_DEGREE, KM_PER_DEGREE * math.cos(math.radians(lat))


def _near(near: dict[str, Any]) -> ColumnElement[bool]:
    k_lat, k_lng = near_factors(near["lat"])
    limit = near["km"] * near["km"]
    field = near["field"]

    def within(lat_expr: ColumnElement[Any], lng_expr: ColumnElement[Any]) -> ColumnElement[bool]:
        dy = clamp((lat_expr - near["lat"]) * k_lat)
        dx = clamp((lng_expr - near["lng"]) * k_lng)
        test: ColumnElement[bool] = dy * dy + dx * dx <= limit
        return test

    # NULL unless both coordinates are numbers, so the comparison cannot hold.
    return within(JsonNumber(Record.data, f"{field}.lat"), JsonNumber(Record.data, f"{field}.lng"))
