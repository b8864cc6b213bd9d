"""Which records a segment holds: compiling its definition for this moment and counting,
paging and searching the records it selects."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.orm import Session

from fold.columns import index as columns
from fold.db.jsonsql import one_of
from fold.db.models import Record, Segment
from fold.fields.schema import TypeSchema
from fold.fields.service import schema_for
from fold.paging import Paging
from fold.records import repository as records
from fold.rules.compile import membership
from fold.rules.context import Context, SegmentDef
from fold.rules.filter import Node
from fold.rules.sql import to_sql
from fold.segments import repository
from fold.segments.numbers import Selected
from fold.timefmt import utcnow

CONTACT_MEMBERS = ("person", "organisation")
# Rows a kept store may have to read again for a job's freeze to come from it.
FRESH_ENOUGH = 20_000


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

    return Context(
        bucket=bucket,
        resource_type=resource_type,
        schema=segment_schema(session, bucket=bucket, resource_type=resource_type),
        now=utcnow(),
        segment=segment,
        postcode=lambda code: repository.postcode(session, bucket=bucket, code=code),
        self_uid=self_uid,
    )


def base_query(bucket: str, resource_type: str) -> Select[Record]:
    return select(Record).where(
        Record.bucket == bucket,
        Record.resource_type.in_(stored_types(resource_type)),
        Record.record_state == "active",
    )


def segment_filter(session: Session, row: Segment) -> Node:
    ctx = make_context(session, bucket=row.bucket, resource_type=row.resource_type)
    return membership(definition(row), ctx)


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


def count(session: Session, stmt: Select[Record]) -> int:
    return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def order_by(schema: TypeSchema, sort: str | None) -> list[Any]:
    keys = [sort] if sort else list(schema.sort_by)
    out: list[Any] = []
    for key in keys:
        column = records.sort_column(schema, key.lstrip("-"))
        # Records without the field come last either way, on both databases.
        out.append((column.desc() if key.startswith("-") else column.asc()).nulls_last())
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


def _from_columns(
    session: Session,
    bucket: str,
    resource_type: str,
    node: Node,
    q: str | None,
    sort_paths: list[str] | None = None,
) -> AbstractContextManager[columns.Found | None]:
    return columns.matching(
        session,
        bucket=bucket,
        stored=stored_types(resource_type),
        node=node,
        q=q,
        lists=lists_lookup(session, bucket),
        sort_paths=sort_paths or (),
    )


def count_selected(
    session: Session, *, bucket: str, resource_type: str, node: Node, q: str | None = None
) -> int:
    """How many active records `node` (and `q`) select: from the column index when it can
    answer, else from SQL."""
    with _from_columns(session, bucket, resource_type, node, q) as found:
        if found is not None:
            return columns.count(found)
    return count(session, selection(bucket, resource_type, node, q))


def count_and_page(
    session: Session,
    *,
    bucket: str,
    resource_type: str,
    node: Node,
    q: str | None,
    schema: TypeSchema,
    sort: str | None,
    paging: Paging,
) -> tuple[int, list[Record]]:
    """The count and one page of what `node` selects, in the order `sort` (or the type's
    default) gives, uid breaking ties."""
    keys = tuple([sort] if sort else schema.sort_by)
    clauses = order_by(schema, sort)
    sort_paths = [k.lstrip("-") for k in keys]
    with _from_columns(session, bucket, resource_type, node, q, sort_paths) as found:
        if found is not None:
            total = columns.count(found)
            picked = columns.page_uids(
                found,
                sort=keys,
                order_by=clauses,
                offset=paging.offset,
                limit=paging.page_size,
            )
    stmt = selection(bucket, resource_type, node, q)
    if found is None:
        return count(session, stmt), page(session, stmt, schema, sort, paging)
    if picked is None:
        return total, page(session, stmt, schema, sort, paging)
    uids, in_order = picked
    if in_order:
        rows = records.by_uids(session, bucket=bucket, resource_type=resource_type, uids=uids)
        return total, [rows[u] for u in uids if u in rows]
    dialect = session.get_bind().dialect.name
    candidates = base_query(bucket, resource_type).where(one_of(Record.uid, uids, dialect))
    chosen = candidates.order_by(*clauses).offset(paging.offset).limit(paging.page_size)
    return total, list(session.scalars(chosen).all())


@contextmanager
def member_selection(session: Session, row: Segment) -> Iterator[Selected]:
    """The segment's records now (for snapshots): rows of the column index, whose store
    stays locked inside the block, when it can answer; else uids from SQL."""
    node = segment_filter(session, row)
    with _from_columns(session, row.bucket, row.resource_type, node, None) as found:
        if found is not None:
            yield Selected(store=found.store, rows=np.flatnonzero(found.mask))
            return
    groups: dict[str, list[str]] = {t: [] for t in stored_types(row.resource_type)}
    for resource_type, uid in stream_keys(session, selection(row.bucket, row.resource_type, node)):
        groups[resource_type].append(uid)
    yield Selected(groups=list(groups.items()))


def selected_keys(
    session: Session, *, bucket: str, resource_type: str, node: Node
) -> list[tuple[str, str]]:
    """(resource type, uid) of every active record `node` selects, in uid order: from the
    column index's member set when this process keeps the store and it is nearly up to
    date (exactly what SQL would select), else read through SQL — building a store, or
    reading back a million rows a job has just rewritten, costs more than the query."""
    behind = columns.lag(session, bucket=bucket, resource_type=resource_type)
    if behind is not None and behind <= FRESH_ENOUGH:
        with _from_columns(session, bucket, resource_type, node, None) as found:
            if found is not None:
                uids, kind = found.store.uids, found.store.resource_type
                return [(kind, u) for u in sorted(uids[i] for i in np.flatnonzero(found.mask))]
    return list(stream_keys(session, selection(bucket, resource_type, node)))


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
