"""Writing and reading audit entries. Every write path calls `record_write`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fold.audit.diff import clean_diff
from fold.db.bulk import Encoded, insert_rows
from fold.db.models import AuditEntry
from fold.ids import make_uri, new_uid
from fold.timefmt import format_datetime, utcnow


@dataclass(frozen=True)
class Change:
    """One write to one record: what it was, what it became."""

    resource_type: str
    uid: str
    prev: dict[str, Any] | None
    new: dict[str, Any] | None
    encoded_diff: str | None = None  # clean_diff(prev, new) already encoded as JSON


def entry_row(
    *, bucket: str, user_uri: str, message: str, change: Change, at: datetime
) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "uid": new_uid(),
        "date": at,
        "resource_type": change.resource_type,
        "record_uid": change.uid,
        "user_uri": user_uri,
        "message": message,
        "diff": (
            clean_diff(change.prev, change.new)
            if change.encoded_diff is None
            else Encoded(change.encoded_diff)
        ),
    }


def record_writes(
    session: Session, *, bucket: str, user_uri: str, message: str, changes: list[Change]
) -> None:
    """One audit entry per change, in the caller's transaction."""
    if not changes:
        return
    at = utcnow()
    rows = [
        entry_row(bucket=bucket, user_uri=user_uri, message=message, change=c, at=at)
        for c in changes
    ]
    table: Any = AuditEntry.__table__
    insert_rows(session, table, rows)


def entry_out(entry: AuditEntry) -> dict[str, Any]:
    return {
        "uid": entry.uid,
        "date": format_datetime(entry.date),
        "uri": make_uri(entry.bucket, entry.resource_type, entry.record_uid),
        "user": entry.user_uri,
        "resource": entry.resource_type,
        "message": entry.message,
        "clean_diff": entry.diff,
    }


@dataclass(frozen=True)
class AuditQuery:
    limit: int = 100
    skip: int = 0
    date_from: datetime | None = None
    date_to: datetime | None = None
    resource_type: str | None = None
    record_uid: str | None = None


def list_entries(
    session: Session, *, bucket: str, query: AuditQuery
) -> tuple[list[dict[str, Any]], int]:
    """Newest first, with the total that matches."""
    conditions = [AuditEntry.bucket == bucket]
    if query.resource_type is not None:
        conditions.append(AuditEntry.resource_type == query.resource_type)
    if query.record_uid is not None:
        conditions.append(AuditEntry.record_uid == query.record_uid)
    if query.date_from is not None:
        conditions.append(AuditEntry.date >= query.date_from)
    if query.date_to is not None:
        conditions.append(AuditEntry.date <= query.date_to)
    total = session.scalar(select(func.count()).select_from(AuditEntry).where(*conditions)) or 0
    rows = session.scalars(
        select(AuditEntry)
        .where(*conditions)
        .order_by(AuditEntry.uid.desc())
        .offset(query.skip)
        .limit(query.limit)
    ).all()
    return [entry_out(r) for r in rows], total
