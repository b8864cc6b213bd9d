"""One record's write (the API's create, replace, patch, delete, restore) in plain SQL, not
through the ORM: no unit of work, no flush events, and on PostgreSQL as few round trips as
the write allows. A create is one statement (the change clock, the row, its audit entry);
a change is two (the clock with the row locked, then the row with its audit entry).

The change clock is taken as `records.clock` asks of a writer of one record: before the
record is locked or written (`clock.stamp_one_inline`: inside the same statement, ahead of
the row in the plan). On SQLite each step is its own statement (no round trips there)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from fold.audit.service import Change, entry_row
from fold.db.bulk import dumps, insert_rows
from fold.db.models import AuditEntry, Record
from fold.records import clock

RECORDS: Table = Record.__table__  # type: ignore[assignment]
AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class StoredRecord:
    """A record row as a write reads it (locked), and what `record_out` shows of it."""

    bucket: str
    resource_type: str
    uid: str
    data: dict[str, Any]
    created: datetime
    last_updated: datetime
    record_state: str
    display_value: str
    unique_key: str | None
    version: int


@dataclass(frozen=True)
class NewRecord:
    """What a write puts in a record row (besides its key and the clock)."""

    data: dict[str, Any]
    record_state: str
    display_value: str
    search_text: str
    unique_key: str | None
    at: datetime


class KeyTaken(Exception):
    """The row's unique key is held by another active record (the unique index said so)."""


_ROW = "bucket, resource_type, uid, data, created, last_updated, record_state, display_value"
_AUDIT_COLUMNS = "bucket, uid, date, resource_type, record_uid, user_uri, message, diff"
_AUDIT_VALUES = (
    ":bucket, :entry_uid, :entry_date, :resource_type, :uid, :user_uri, :message, "
    "CAST(:diff AS JSONB)"
)


def _pg_lock(stamp: str) -> Any:
    return text(
        f"WITH clock AS MATERIALIZED ({stamp}) "
        f"SELECT {', '.join('r.' + c for c in _ROW.split(', '))}, r.unique_key, clock.v AS version "
        "FROM clock, records AS r "
        "WHERE r.bucket = :bucket AND r.resource_type = :resource_type AND r.uid = :uid "
        "FOR UPDATE OF r"
    )


def _pg_insert(stamp: str) -> Any:
    return text(
        f"WITH clock AS MATERIALIZED ({stamp}), "
        f"written AS (INSERT INTO records ({_ROW}, search_text, unique_key, version) "
        "SELECT :bucket, :resource_type, :uid, CAST(:data AS JSONB), :at, :at, :record_state, "
        ":display_value, :search_text, :unique_key, clock.v FROM clock "
        "ON CONFLICT DO NOTHING RETURNING uid), "
        f"audited AS (INSERT INTO audit_entries ({_AUDIT_COLUMNS}) "
        f"SELECT {_AUDIT_VALUES} FROM written) "
        "SELECT clock.v, (SELECT count(*) FROM written) FROM clock"
    )


_PG_LOCK = {takes: _pg_lock(sql) for takes, sql in clock.INLINE_SQL.items()}
_PG_INSERT = {takes: _pg_insert(sql) for takes, sql in clock.INLINE_SQL.items()}
_PG_UPDATE = text(
    "WITH written AS (UPDATE records SET data = CAST(:data AS JSONB), "
    "record_state = :record_state, display_value = :display_value, "
    "search_text = :search_text, unique_key = :unique_key, last_updated = :at, "
    "version = :version "
    "WHERE bucket = :bucket AND resource_type = :resource_type AND uid = :uid "
    "RETURNING uid) "
    f"INSERT INTO audit_entries ({_AUDIT_COLUMNS}) SELECT {_AUDIT_VALUES} FROM written"
)

_KEY = (
    RECORDS.c.bucket == bindparam("key_bucket"),
    RECORDS.c.resource_type == bindparam("key_type"),
    RECORDS.c.uid == bindparam("key_uid"),
)
_LITE_LOCK = select(
    *(RECORDS.c[name] for name in _ROW.split(", ")), RECORDS.c.unique_key, RECORDS.c.version
).where(*_KEY)
_LITE_INSERT = sqlite_insert(RECORDS).on_conflict_do_nothing()
_LITE_UPDATE = update(RECORDS).where(*_KEY)


def _audit_params(
    bucket: str, user_uri: str, message: str, change: Change, at: datetime
) -> dict[str, Any]:
    entry = entry_row(bucket=bucket, user_uri=user_uri, message=message, change=change, at=at)
    return {
        "entry_uid": entry["uid"],
        "entry_date": entry["date"],
        "user_uri": user_uri,
        "message": message,
        "diff": dumps(entry["diff"]),
    }


def _audit(
    session: Session, bucket: str, user_uri: str, message: str, change: Change, at: datetime
) -> None:
    row = entry_row(bucket=bucket, user_uri=user_uri, message=message, change=change, at=at)
    insert_rows(session, AUDIT, [row])


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def lock(session: Session, *, bucket: str, resource_type: str, uid: str) -> StoredRecord | None:
    """The record, locked until the transaction ends, with this transaction's clock value
    for the bucket taken first; None when there is no such record."""
    if not _postgres(session):
        version = clock.stamp_one(session, bucket, resource_type, uid)
        key = {"key_bucket": bucket, "key_type": resource_type, "key_uid": uid}
        found = session.execute(_LITE_LOCK, key).first()
        if found is None:
            return None
        return replace(StoredRecord(**found._mapping), version=version)
    stamp = clock.stamp_one_inline(session, bucket, resource_type, uid)
    params = {**stamp.params, "bucket": bucket, "resource_type": resource_type, "uid": uid}
    row = session.execute(_PG_LOCK[stamp.takes], params).first()
    if row is None:
        return None
    clock.took(session, stamp, bucket, int(row.version))
    return StoredRecord(**row._mapping)


def insert(
    session: Session,
    *,
    bucket: str,
    resource_type: str,
    uid: str,
    new: NewRecord,
    user_uri: str,
    message: str,
) -> int:
    """A new record and its audit entry, and the clock value it carries; KeyTaken (nothing
    written) when its unique key is already held."""
    values = {
        "bucket": bucket,
        "resource_type": resource_type,
        "uid": uid,
        "record_state": new.record_state,
        "display_value": new.display_value,
        "search_text": new.search_text,
        "unique_key": new.unique_key,
    }
    change = Change(resource_type, uid, None, new.data)
    if not _postgres(session):
        version = clock.stamp_one(session, bucket, resource_type, uid)
        row = {**values, "data": new.data, "created": new.at, "last_updated": new.at}
        if session.execute(_LITE_INSERT, {**row, "version": version}).rowcount != 1:  # type: ignore[attr-defined]
            raise KeyTaken
        _audit(session, bucket, user_uri, message, change, new.at)
        return version
    stamp = clock.stamp_one_inline(session, bucket, resource_type, uid)
    params = {
        **stamp.params,
        **values,
        **_audit_params(bucket, user_uri, message, change, new.at),
        "data": dumps(new.data),
        "at": new.at,
    }
    value, written = session.execute(_PG_INSERT[stamp.takes], params).one()
    clock.took(session, stamp, bucket, int(value))
    if written != 1:
        raise KeyTaken
    return int(value)


def update_row(
    session: Session,
    *,
    row: StoredRecord,
    new: NewRecord,
    user_uri: str,
    message: str,
) -> None:
    """Write `new` over a record `lock` returned, with its audit entry; KeyTaken (the
    transaction is then spoilt) when its unique key is already held."""
    values = {
        "record_state": new.record_state,
        "display_value": new.display_value,
        "search_text": new.search_text,
        "unique_key": new.unique_key,
        "version": row.version,
    }
    prev = {**row.data, "record_state": row.record_state}
    now = {**new.data, "record_state": new.record_state}
    change = Change(row.resource_type, row.uid, prev, now)
    # The session may hold the record as an ORM object (read before, in the same session):
    # it reads the row again when next used, not the copy from before this write.
    known = session.identity_map.get(identity_key(Record, (row.bucket, row.resource_type, row.uid)))
    if known is not None:
        session.expire(known)
    try:
        if not _postgres(session):
            key = {"key_bucket": row.bucket, "key_type": row.resource_type, "key_uid": row.uid}
            session.execute(
                _LITE_UPDATE, {**key, **values, "data": new.data, "last_updated": new.at}
            )
            _audit(session, row.bucket, user_uri, message, change, new.at)
            return
        params = {
            **values,
            **_audit_params(row.bucket, user_uri, message, change, new.at),
            "bucket": row.bucket,
            "resource_type": row.resource_type,
            "uid": row.uid,
            "data": dumps(new.data),
            "at": new.at,
        }
        session.execute(_PG_UPDATE, params)
    except IntegrityError:
        raise KeyTaken from None
