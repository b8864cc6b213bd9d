"""Record writes and reads. Every write goes through `_save` so derived fields and the
audit trail can never be skipped."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace as replace_fields
from typing import Any, TypeVar

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from fold.auth.policies import Caller
from fold.db.models import Record
from fold.db.queries import count
from fold.errors import Conflict, NotFound, Problem, ValidationFailed
from fold.fields.builtin import BUILTIN
from fold.fields.display import display_value, search_text, unique_key
from fold.fields.paths import FIELD_PATH_RE, MISSING, is_field_path
from fold.fields.schema import TypeSchema
from fold.fields.service import check_resource_type, schema_for
from fold.ids import STORED_TYPES, is_uid, make_uri, new_uid
from fold.paging import Paging
from fold.params import read_flag
from fold.records import repository, writes
from fold.records.document import clean_document, expand_dotted, merge_patch
from fold.records.writes import StoredRecord
from fold.rules.compile import normalise, rules_filter
from fold.rules.context import Context
from fold.rules.sql import to_sql
from fold.timefmt import format_datetime, utcnow

_Row = TypeVar("_Row", Record, StoredRecord)
RESERVED_PARAMS = frozenset({"page", "page_size", "mode", "sort", "include_deleted"})


def is_list_param(name: str) -> bool:
    """A record list reads its own parameters and takes any other name as a field filter."""
    return name in RESERVED_PARAMS or is_field_path(name)


def record_out(row: Record | StoredRecord) -> dict[str, Any]:
    """A record as the API returns it: its fields plus Fold's own."""
    return {
        **row.data,
        "uid": row.uid,
        "uri": make_uri(row.bucket, row.resource_type, row.uid),
        "resource_type": row.resource_type,
        "created": format_datetime(row.created),
        "last_updated": format_datetime(row.last_updated),
        "record_state": row.record_state,
        "display_value": row.display_value,
    }


def derived(
    schema: TypeSchema, data: dict[str, Any], uid: str, *, key: Any = MISSING
) -> dict[str, Any]:
    """Display value, search text and unique key (`key`: already worked out)."""
    shown = display_value(schema, data, uid)
    return {
        "display_value": shown,
        "search_text": search_text(schema, data, shown),
        "unique_key": unique_key(schema, data) if key is MISSING else key,
    }


def _clean_or_refuse(raw: Any, schema: TypeSchema, bucket: str) -> dict[str, Any]:
    data, problems = clean_document(raw, schema, bucket)
    if problems:
        raise ValidationFailed.collect(problems)
    return data


def _check_unique(
    session: Session, schema: TypeSchema, row_uid: str, key: str | None, bucket: str
) -> None:
    if key is None or schema.unique_field is None:
        return
    holder = repository.active_by_unique_keys(
        session, bucket=bucket, resource_type=schema.resource_type, keys=[key]
    ).get(key)
    if holder is not None and holder.uid != row_uid:
        raise Conflict(
            f"Another {schema.resource_type} already has {schema.unique_field} {key!r}: "
            f"{make_uri(bucket, schema.resource_type, holder.uid)}",
            param=schema.unique_field,
        )


def _key_taken(schema: TypeSchema) -> Conflict:
    return Conflict(
        f"Another {schema.resource_type} already has that {schema.unique_field}.",
        param=schema.unique_field,
    )


def _load(
    session: Session, caller: Caller, resource_type: str, uid: str, *, deleted_ok: bool = False
) -> Record:
    _check_uid(resource_type, uid)
    row = repository.get(session, bucket=caller.bucket, resource_type=resource_type, uid=uid)
    return _found(row, resource_type, uid, deleted_ok=deleted_ok)


def _lock(
    session: Session, caller: Caller, resource_type: str, uid: str, *, deleted_ok: bool = False
) -> StoredRecord:
    """The record to change, locked until the change commits (so a concurrent change, a
    PATCH or a job's batch, is applied after this one instead of over it)."""
    _check_uid(resource_type, uid)
    row = writes.lock(session, bucket=caller.bucket, resource_type=resource_type, uid=uid)
    return _found(row, resource_type, uid, deleted_ok=deleted_ok)


def _check_uid(resource_type: str, uid: str) -> None:
    if not is_uid(uid):
        raise NotFound(f"No {resource_type} with uid {uid!r}: a uid is 24 hex characters.")


def _found(row: _Row | None, resource_type: str, uid: str, *, deleted_ok: bool) -> _Row:
    if row is None or (row.record_state == "deleted" and not deleted_ok):
        raise NotFound(f"No {resource_type} with uid {uid} in this bucket.")
    return row


def create(
    session: Session, *, caller: Caller, resource_type: str, body: Any, message: str = "Created"
) -> dict[str, Any]:
    caller.require("write_records")
    check_resource_type(resource_type)
    schema = schema_for(session, bucket=caller.bucket, resource_type=resource_type)
    data = _clean_or_refuse(body, schema, caller.bucket)
    uid = new_uid()
    extra = derived(schema, data, uid)
    now = utcnow()
    new = writes.NewRecord(data=data, record_state="active", at=now, **extra)
    try:
        version = writes.insert(
            session,
            bucket=caller.bucket,
            resource_type=resource_type,
            uid=uid,
            new=new,
            user_uri=caller.user_uri,
            message=message,
        )
    except writes.KeyTaken:
        # Refused by the unique index, nothing written: name the holder when it is found.
        _check_unique(session, schema, uid, extra["unique_key"], caller.bucket)
        raise _key_taken(schema) from None
    return record_out(
        StoredRecord(
            bucket=caller.bucket,
            resource_type=resource_type,
            uid=uid,
            data=data,
            created=now,
            last_updated=now,
            record_state="active",
            display_value=extra["display_value"],
            unique_key=extra["unique_key"],
            version=version,
        )
    )


def get(session: Session, *, caller: Caller, resource_type: str, uid: str) -> dict[str, Any]:
    check_resource_type(resource_type)
    return record_out(_load(session, caller, resource_type, uid))


def _save(
    session: Session,
    *,
    caller: Caller,
    row: StoredRecord,
    schema: TypeSchema,
    data: dict[str, Any],
    message: str,
    state: str | None = None,
) -> dict[str, Any]:
    extra = derived(schema, data, row.uid)
    new_state = state or row.record_state
    # An active row keeping its key needs no look: the unique index (over active rows)
    # already has it as the key's one holder.
    keeps_key = row.record_state == "active" and extra["unique_key"] == row.unique_key
    if new_state == "active" and not keeps_key:
        _check_unique(session, schema, row.uid, extra["unique_key"], caller.bucket)
    new = writes.NewRecord(data=data, record_state=new_state, at=utcnow(), **extra)
    try:
        writes.update_row(session, row=row, new=new, user_uri=caller.user_uri, message=message)
    except writes.KeyTaken:
        raise _key_taken(schema) from None
    return record_out(
        replace_fields(
            row,
            data=data,
            record_state=new_state,
            display_value=extra["display_value"],
            unique_key=extra["unique_key"],
            last_updated=new.at,
        )
    )


def replace(
    session: Session, *, caller: Caller, resource_type: str, uid: str, body: Any
) -> dict[str, Any]:
    caller.require("write_records")
    check_resource_type(resource_type)
    row = _lock(session, caller, resource_type, uid)
    schema = schema_for(session, bucket=caller.bucket, resource_type=resource_type)
    data = _clean_or_refuse(body, schema, caller.bucket)
    return _save(session, caller=caller, row=row, schema=schema, data=data, message="Replaced")


def patch(
    session: Session, *, caller: Caller, resource_type: str, uid: str, body: Any
) -> dict[str, Any]:
    caller.require("write_records")
    check_resource_type(resource_type)
    row = _lock(session, caller, resource_type, uid)
    if not isinstance(body, dict):
        raise ValidationFailed("A PATCH body must be a JSON object of the fields to change.")
    problems: list[Problem] = []
    changes = expand_dotted(body, problems)
    if problems:
        raise ValidationFailed.collect(problems)
    schema = schema_for(session, bucket=caller.bucket, resource_type=resource_type)
    data = _clean_or_refuse(merge_patch(row.data, changes), schema, caller.bucket)
    return _save(session, caller=caller, row=row, schema=schema, data=data, message="Changed")


def delete(session: Session, *, caller: Caller, resource_type: str, uid: str) -> dict[str, Any]:
    caller.require("delete_records")
    check_resource_type(resource_type)
    row = _lock(session, caller, resource_type, uid)
    schema = schema_for(session, bucket=caller.bucket, resource_type=resource_type)
    return _save(
        session,
        caller=caller,
        row=row,
        schema=schema,
        data=row.data,
        message="Deleted",
        state="deleted",
    )


def restore(session: Session, *, caller: Caller, resource_type: str, uid: str) -> dict[str, Any]:
    caller.require("restore_records")
    check_resource_type(resource_type)
    row = _lock(session, caller, resource_type, uid, deleted_ok=True)
    if row.record_state == "active":
        return record_out(row)
    schema = schema_for(session, bucket=caller.bucket, resource_type=resource_type)
    return _save(
        session,
        caller=caller,
        row=row,
        schema=schema,
        data=row.data,
        message="Restored",
        state="active",
    )


@dataclass(frozen=True)
class ListQuery:
    filters: dict[str, str]
    match_any: bool = False
    sort: str | None = None
    include_deleted: bool = False


def read_list_query(params: dict[str, Any]) -> ListQuery:
    mode = str(params.get("mode", "AND")).upper()
    if mode not in ("AND", "OR"):
        raise ValidationFailed("'mode' must be AND or OR.", param="mode")
    filters: dict[str, str] = {}
    for key, value in params.items():
        if key in RESERVED_PARAMS:
            continue
        if not FIELD_PATH_RE.match(key):
            raise ValidationFailed(
                f"{key!r} is not a field path: use dotted names of letters, digits, '_', '-'.",
                param=key,
            )
        filters[key] = str(value)
    sort = params.get("sort")
    if sort is not None and not FIELD_PATH_RE.match(str(sort).lstrip("-")):
        raise ValidationFailed(f"{sort!r} is not a field to sort by.", param="sort")
    include_deleted = read_flag(params, "include_deleted")
    return ListQuery(filters, mode == "OR", str(sort) if sort else None, include_deleted)


def filter_conditions(
    bucket: str, schema: TypeSchema, filters: dict[str, str]
) -> list[ColumnElement[bool]]:
    """`?field=value` filters are `equals` rules, compiled like a segment's."""
    ctx = Context(bucket=bucket, resource_type=schema.resource_type, schema=schema, now=utcnow())
    conditions = []
    for path, value in filters.items():
        rules, problems = normalise([{"field": path, "operator": "equals", "value": value}], ctx)
        if problems:
            raise ValidationFailed(problems[0].description, param=path)
        conditions.append(to_sql(rules_filter(rules, ctx), bucket=bucket))
    return conditions


def list_page(
    session: Session, *, caller: Caller, resource_type: str, query: ListQuery, paging: Paging
) -> dict[str, Any]:
    check_resource_type(resource_type)
    schema = schema_for(session, bucket=caller.bucket, resource_type=resource_type)
    conditions = filter_conditions(caller.bucket, schema, query.filters)
    stmt = repository.listing(
        bucket=caller.bucket,
        resource_type=resource_type,
        conditions=conditions,
        match_any=query.match_any,
        include_deleted=query.include_deleted and caller.can("restore_records"),
    )
    total = count(session, stmt)
    order = repository.sort_order(schema, query.sort or "uid")
    rows = session.scalars(
        stmt.order_by(order, Record.uid).offset(paging.offset).limit(paging.page_size)
    ).all()
    return {"results": [record_out(r) for r in rows], **paging.envelope(total)}


def summary(session: Session, *, caller: Caller) -> dict[str, Any]:
    counts = repository.summary(session, bucket=caller.bucket)
    types = []
    for resource_type in STORED_TYPES:
        count, last = counts.get(resource_type, (0, None))
        types.append(
            {
                "resource_type": resource_type,
                "name": BUILTIN[resource_type].name,
                "count": count,
                "last_modified": format_datetime(last) if last else None,
            }
        )
    return {"bucket": caller.bucket, "resource_types": types}
