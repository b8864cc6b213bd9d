"""Every query over records. Each takes the bucket: there is no path without it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, literal_column, or_, select
from sqlalchemy.orm import Session

from fold.db.jsonsql import json_number, json_text, one_of
from fold.db.models import Record
from fold.fields.schema import TypeSchema

SYSTEM_SORTS: dict[str, Any] = {
    "uid": Record.uid,
    "created": Record.created,
    "last_updated": Record.last_updated,
    "display_value": Record.display_value,
}


# The state as a literal, not a parameter: only then may a planner use the partial
# indexes on active records (the unique key's; on SQLite migration 0014's) in a plan
# made before the values are known (PostgreSQL's generic plan for a statement psycopg
# has prepared; SQLite's when it prepares).
ACTIVE = Record.record_state == literal_column("'active'")


def get(session: Session, *, bucket: str, resource_type: str, uid: str) -> Record | None:
    """A record to read. (One to change is locked by `records.writes.lock`.)"""
    return session.scalar(
        select(Record).where(
            Record.bucket == bucket, Record.resource_type == resource_type, Record.uid == uid
        )
    )


def by_uids(
    session: Session, *, bucket: str, resource_type: str, uids: Iterable[str]
) -> dict[str, Record]:
    wanted = list(set(uids))
    if not wanted:
        return {}
    dialect = session.get_bind().dialect.name
    rows = session.scalars(
        select(Record).where(
            Record.bucket == bucket,
            Record.resource_type == resource_type,
            one_of(Record.uid, wanted, dialect),
        )
    ).all()
    return {r.uid: r for r in rows}


def active_by_unique_keys(
    session: Session, *, bucket: str, resource_type: str, keys: Iterable[str]
) -> dict[str, Record]:
    wanted = list(set(keys))
    if not wanted:
        return {}
    rows = session.scalars(
        select(Record).where(
            Record.bucket == bucket,
            Record.resource_type == resource_type,
            ACTIVE,
            one_of(Record.unique_key, wanted, session.get_bind().dialect.name),
        )
    ).all()
    return {r.unique_key: r for r in rows if r.unique_key is not None}


def sort_column(schema: TypeSchema, path: str) -> ColumnElement[Any]:
    if path in SYSTEM_SORTS:
        return SYSTEM_SORTS[path]  # type: ignore[no-any-return]
    if schema.field_type(path) == "number":
        return json_number(Record.data, path)
    return json_text(Record.data, path)


def listing(
    *,
    bucket: str,
    resource_type: str,
    conditions: Sequence[ColumnElement[bool]],
    match_any: bool,
    include_deleted: bool,
) -> Select[Record]:
    base = [Record.bucket == bucket, Record.resource_type == resource_type]
    if not include_deleted:
        base.append(ACTIVE)
    stmt = select(Record).where(*base)
    if conditions:
        stmt = stmt.where(or_(*conditions) if match_any else and_(*conditions))
    return stmt


def sort_order(schema: TypeSchema, key: str) -> Any:
    """A sort key (`-` first for descending) as an ORDER BY term. Records without the
    field come last either way, on both databases."""
    column = sort_column(schema, key.lstrip("-"))
    return (column.desc() if key.startswith("-") else column.asc()).nulls_last()


def summary(session: Session, *, bucket: str) -> dict[str, tuple[int, Any]]:
    rows = session.execute(
        select(Record.resource_type, func.count(), func.max(Record.last_updated))
        .where(Record.bucket == bucket, Record.record_state == "active")
        .group_by(Record.resource_type)
    ).all()
    return {r[0]: (r[1], r[2]) for r in rows}
