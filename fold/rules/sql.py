"""Filter document → SQLAlchemy Core boolean expression over the records table (or an
alias of it, for the related records of a related-record rule).

A test that cannot hold (missing field, wrong kind) is NULL or false in SQL; `not` wraps
its operand in coalesce(…, false) so that a missing field satisfies the negation, as in
Python."""

from __future__ import annotations

from typing import Any, assert_never

from sqlalchemy import ColumnElement, and_, exists, false, literal, not_, or_, select, true
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import coalesce

from fold.db.jsonsql import ColumnTest, JsonLink, JsonNumber, JsonShape, JsonTest
from fold.db.models import Record, SegmentUri
from fold.rules.filter import Node
from fold.rules.nodes import (
    And,
    Const,
    Exists,
    Leaf,
    Listed,
    Near,
    Not,
    Or,
    Related,
    Size,
    SystemLeaf,
    Typed,
    typed,
)
from fold.rules.ops import AGGREGATES, near_sql


def to_sql(node: Node, *, bucket: str, table: Any = Record) -> ColumnElement[bool]:
    return emit(typed(node), bucket=bucket, table=table)


def emit(node: Typed, *, bucket: str, table: Any = Record) -> ColumnElement[bool]:
    match node:
        case And(parts):
            return and_(*[emit(n, bucket=bucket, table=table) for n in parts])
        case Or(parts):
            return or_(*[emit(n, bucket=bucket, table=table) for n in parts])
        case Not(part):
            return not_(coalesce(emit(part, bucket=bucket, table=table), false()))
        case Const(value):
            return true() if value else false()
        case Near(field, lat, lng, km):
            # NULL unless both coordinates are numbers, so the comparison cannot hold.
            lat_expr = JsonNumber(table.data, f"{field}.lat")
            lng_expr = JsonNumber(table.data, f"{field}.lng")
            out: ColumnElement[bool] = near_sql(lat_expr, lng_expr, lat, lng, km)
            return out
        case Exists(field):
            return JsonShape(table.data, field, "exists")
        case Size(field, n):
            return JsonShape(table.data, field, "size", n)
        case Listed(segment, kind):
            members = select(SegmentUri.record_uid).where(
                SegmentUri.bucket == bucket,
                SegmentUri.segment_uid == segment,
                SegmentUri.kind == kind,
            )
            return table.uid.in_(members)  # type: ignore[no-any-return]
        case SystemLeaf(system, test, value):
            kind = system.kind
            return ColumnTest(system.sql(table), lambda e, d: test.sql(e, value, kind, d))
        case Leaf(field, test, kind, value, many):

            def predicate(expr: ColumnElement[Any], dialect: str) -> ColumnElement[bool]:
                return test.sql(expr, value, kind, dialect)

            return JsonTest(table.data, field, kind, predicate, any=many)
        case Related():
            return _related(node, bucket=bucket, table=table)
        case _:
            assert_never(node)


def _related(node: Related, *, bucket: str, table: Any) -> ColumnElement[bool]:
    """A correlated subquery over the related records: EXISTS for "any" and "none", else
    the count or aggregate compared with the rule's number. The link lookup is on
    (bucket, resource_type, link text), which migration 0013 indexes."""
    other = aliased(Record)
    uri = literal("/") + bucket + "/" + table.resource_type + "/" + table.uid + "/"
    where = [
        other.bucket == bucket,
        other.resource_type == node.type,
        other.record_state == "active",
        JsonLink(other.data, node.link) == uri,
        emit(node.filter, bucket=bucket, table=other),
    ]
    having = node.having
    if having.aggregate == "count" and having.value == 1 and having.test.name in ("gte", "lt"):
        found = exists(select(literal(1)).where(*where))
        return found if having.test.name == "gte" else not_(found)
    aggregate = AGGREGATES[having.aggregate]
    number = JsonNumber(other.data, having.field) if having.field else None
    value = select(aggregate.sql(number)).where(*where).scalar_subquery()
    return having.test.sql(value, having.value, "number", "")
