"""Who answers a count, a page or a segment's members: the column index when it can, SQL
otherwise. The one place that chooses; both answer the same filter document exactly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import numpy as np
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from fold.columns import index as columns
from fold.db.jsonsql import one_of
from fold.db.models import Record, Segment
from fold.db.queries import count
from fold.fields.schema import TypeSchema
from fold.paging import Paging
from fold.rules.filter import Node
from fold.segments.members import (
    lists_lookup,
    order_by,
    page,
    segment_filter,
    selection,
    stored_types,
    stream_keys,
)
from fold.segments.numbers import Selected

# Rows a kept store may have to read again for a job's freeze to come from it.
FRESH_ENOUGH = 20_000


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
    # By their unique key only: the rows are the index's (active when it answered), and a
    # state condition would lead SQLite to the state index and through every active record.
    candidates = select(Record).where(
        Record.bucket == bucket,
        Record.resource_type.in_(stored_types(resource_type)),
        one_of(Record.uid, uids, session.get_bind().dialect.name),
    )
    if in_order:
        rows = {r.uid: r for r in session.scalars(candidates)}
        return total, [rows[u] for u in uids if u in rows]
    chosen = candidates.order_by(*clauses).offset(paging.offset).limit(paging.page_size)
    return total, list(session.scalars(chosen).all())


@contextmanager
def member_selection(session: Session, row: Segment) -> Iterator[Selected]:
    """The segment's records now (for snapshots): rows of the column index, whose store
    stays locked inside the block, when it can answer; else uids from SQL."""
    node = segment_filter(session, row)
    with _from_columns(session, row.bucket, row.resource_type, node, None) as found:
        if found is not None and not found.store.mixed:
            yield Selected(store=found.store, rows=np.flatnonzero(found.mask))
            return
    groups: dict[str, list[str]] = {t: [] for t in stored_types(row.resource_type)}
    for resource_type, uid in stream_keys(session, selection(row.bucket, row.resource_type, node)):
        groups[resource_type].append(uid)
    yield Selected(groups=list(groups.items()))


def selected(
    session: Session, *, bucket: str, resource_type: str, node: Node
) -> list[tuple[str, str]] | Select[Record]:
    """What `node` selects, for a job to freeze: (resource type, uid) in uid order from
    the column index when `selected_keys` would take them from it, else the SQL selection
    itself (for the caller to read with INSERT ... SELECT, without a row through Python)."""
    # A worker that has not used the store yet opens it from disk (no row read): a
    # snapshot close to now answers in far less time than SQL reading a million rows.
    single = stored_types(resource_type) == (resource_type,)
    behind = columns.lag(
        session,
        bucket=bucket,
        resource_type=resource_type,
        open_from_disk=single,
        up_to=FRESH_ENOUGH,
    )
    if behind is not None and behind <= FRESH_ENOUGH:
        with _from_columns(session, bucket, resource_type, node, None) as found:
            if found is not None and not found.store.mixed:
                kind = found.store.resource_type
                return [(kind, u) for u in found.store.uids.in_uid_order(found.mask)]
    return selection(bucket, resource_type, node)


def selected_keys(
    session: Session, *, bucket: str, resource_type: str, node: Node
) -> list[tuple[str, str]]:
    """(resource type, uid) of every active record `node` selects, in uid order: from the
    column index's member set when this process keeps the store and it is nearly up to
    date (exactly what SQL would select), else read through SQL — building a store, or
    reading back a million rows a job has just rewritten, costs more than the query."""
    found = selected(session, bucket=bucket, resource_type=resource_type, node=node)
    return found if isinstance(found, list) else list(stream_keys(session, found))
