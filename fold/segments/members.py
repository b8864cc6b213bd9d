"""Which records a segment holds: compiling its definition for this moment and counting,
paging and searching the records it selects."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, select
from sqlalchemy.orm import Session

from fold.db.jsonsql import JsonLink
from fold.db.models import Record, Segment
from fold.fields.schema import TypeSchema
from fold.fields.service import schema_for
from fold.ids import STORED_TYPES
from fold.paging import Paging
from fold.records import repository as records
from fold.records.service import record_out
from fold.rules.compile import compose
from fold.rules.context import Context, SegmentDef
from fold.rules.filter import Node
from fold.rules.python import Linked
from fold.rules.sql import to_sql
from fold.segments import repository
from fold.timefmt import utcnow

CONTACT_MEMBERS = ("person", "organisation")


def stored_types(resource_type: str) -> tuple[str, ...]:
    return CONTACT_MEMBERS if resource_type == "contact" else (resource_type,)


def segment_schema(session: Session, *, bucket: str, resource_type: str) -> TypeSchema:
    """The field schema rules on this type see; `contact` sees person and organisation."""
    if resource_type != "contact":
        return schema_for(session, bucket=bucket, resource_type=resource_type)
    person = schema_for(session, bucket=bucket, resource_type="person")
    organisation = schema_for(session, bucket=bucket, resource_type="organisation")
    fields = {**organisation.fields, **person.fields}
    return replace(
        person,
        resource_type="contact",
        name="Contacts",
        name_singular="Contact",
        prefix="con",
        fields=fields,
        search_fields=("first_name", "last_name", "name", "email", "address.postal_code"),
        sort_by=("display_value",),
        unique_field=None,
    )


def definition(row: Segment) -> SegmentDef:
    return SegmentDef(
        uid=row.uid,
        resource_type=row.resource_type,
        segment_type=row.segment_type,
        rules=row.rules,
        parent_uid=row.parent_uid,
        deleted=row.record_state != "active",
        name=row.name,
    )


def make_context(
    session: Session, *, bucket: str, resource_type: str, self_uid: str | None = None
) -> Context:
    cache: dict[str, SegmentDef | None] = {}

    def segment(uid: str) -> SegmentDef | None:
        if uid not in cache:
            row = repository.get(session, bucket=bucket, uid=uid)
            cache[uid] = definition(row) if row else None
        return cache[uid]

    schemas: dict[str, TypeSchema | None] = {}

    def schema_of(other: str) -> TypeSchema | None:
        if other not in schemas:
            schemas[other] = (
                schema_for(session, bucket=bucket, resource_type=other)
                if other in STORED_TYPES
                else None
            )
        return schemas[other]

    return Context(
        bucket=bucket,
        resource_type=resource_type,
        schema=segment_schema(session, bucket=bucket, resource_type=resource_type),
        now=utcnow(),
        segment=segment,
        postcode=lambda code: repository.postcode(session, bucket=bucket, code=code),
        self_uid=self_uid,
        schema_of=schema_of,
    )


def base_query(bucket: str, resource_type: str) -> Select[Record]:
    return select(Record).where(
        Record.bucket == bucket,
        Record.resource_type.in_(stored_types(resource_type)),
        records.ACTIVE,
    )


def segment_filter(
    session: Session, row: Segment, extra: list[dict[str, Any]] | None = None
) -> Node:
    """The segment's filter for this moment; `extra`: normalised rules a job adds to it."""
    ctx = make_context(session, bucket=row.bucket, resource_type=row.resource_type)
    return compose(definition(row), ctx, extra=extra).node


def search_condition(q: str | None) -> ColumnElement[bool] | None:
    """Every word of `q` appears in the record's search text (names, email, postcode)."""
    if not q or not q.strip():
        return None
    words = q.lower().split()[:8]
    escaped = [w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for w in words]
    return and_(*[Record.search_text.like(f"%{w}%", escape="\\") for w in escaped])


def selection(bucket: str, resource_type: str, node: Node, q: str | None = None) -> Select[Record]:
    stmt = base_query(bucket, resource_type).where(to_sql(node, bucket=bucket))
    condition = search_condition(q)
    return stmt if condition is None else stmt.where(condition)


def order_by(schema: TypeSchema, sort: str | None) -> list[Any]:
    keys = [sort] if sort else list(schema.sort_by)
    out: list[Any] = []
    for key in keys:
        out.append(records.sort_order(schema, key))
    out.append(Record.uid.asc())
    return out


def page(
    session: Session,
    stmt: Select[Record],
    schema: TypeSchema,
    sort: str | None,
    paging: Paging,
) -> list[Record]:
    return list(
        session.scalars(
            stmt.order_by(*order_by(schema, sort)).offset(paging.offset).limit(paging.page_size)
        ).all()
    )


def stream(session: Session, stmt: Select[Record], batch: int = 1000) -> Iterator[Record]:
    """Every selected record in uid order, a batch at a time (bounded memory: the session
    holds loaded records weakly, so those the caller has let go are freed)."""
    after = ""
    while True:
        rows = session.scalars(
            stmt.where(Record.uid > after).order_by(Record.uid).limit(batch)
        ).all()
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].uid


def stream_keys(
    session: Session, stmt: Select[Record], batch: int = 10_000
) -> Iterator[tuple[str, str]]:
    """(resource type, uid) of every selected record in uid order, without loading them."""
    keys = stmt.with_only_columns(Record.resource_type, Record.uid)
    after = ""
    while True:
        rows = session.execute(
            keys.where(Record.uid > after).order_by(Record.uid).limit(batch)
        ).all()
        yield from ((resource_type, uid) for resource_type, uid in rows)
        if len(rows) < batch:
            return
        after = rows[-1][1]


def lists_lookup(session: Session, bucket: str) -> Any:
    cache: dict[tuple[str, str], set[str]] = {}

    def lists(segment_uid: str, kind: str) -> set[str]:
        key = (segment_uid, kind)
        if key not in cache:
            cache[key] = set(
                repository.list_uids(session, bucket=bucket, uid=segment_uid, kind=kind)
            )
        return cache[key]

    return lists


def linked_lookup(session: Session, bucket: str) -> Linked:
    """The Python twin's related records: the active records of a type whose link field
    holds a record's URI (by the link indexes of migration 0013)."""
    cache: dict[tuple[str, str, str], list[dict[str, Any]]] = {}

    def linked(resource_type: str, link: str, record: dict[str, Any]) -> list[dict[str, Any]]:
        key = (resource_type, link, record["uri"])
        if key not in cache:
            rows = session.scalars(
                base_query(bucket, resource_type)
                .where(JsonLink(Record.data, link) == record["uri"])
                .order_by(Record.uid)
            ).all()
            cache[key] = [record_out(r) for r in rows]
        return cache[key]

    return linked
