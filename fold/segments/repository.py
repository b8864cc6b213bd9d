"""Every query over segments, their lists, fieldsets and postcodes; each takes the
bucket. (The history's tables — versions, snapshots and schedules — are queried in
fold.segments.history_repository; record numbers keep their SQL in fold.segments.numbers.)"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from fold.db.models import Fieldset, Postcode, Segment, SegmentUri


def get(session: Session, *, bucket: str, uid: str) -> Segment | None:
    return session.get(Segment, (bucket, uid))


def all_segments(
    session: Session, *, bucket: str, include_deleted: bool = False
) -> Sequence[Segment]:
    stmt = select(Segment).where(Segment.bucket == bucket)
    if not include_deleted:
        stmt = stmt.where(Segment.record_state == "active")
    return session.scalars(stmt.order_by(Segment.name, Segment.uid)).all()


def live_children(session: Session, *, bucket: str, uid: str) -> Sequence[Segment]:
    return session.scalars(
        select(Segment).where(
            Segment.bucket == bucket,
            Segment.parent_uid == uid,
            Segment.record_state == "active",
        )
    ).all()


def children_deleted_at(
    session: Session, *, bucket: str, uid: str, at: datetime
) -> Sequence[Segment]:
    """The deleted children of a segment whose delete was stamped `at` (one cascade)."""
    return session.scalars(
        select(Segment).where(
            Segment.bucket == bucket,
            Segment.parent_uid == uid,
            Segment.record_state == "deleted",
            Segment.last_updated == at,
        )
    ).all()


def list_uids(session: Session, *, bucket: str, uid: str, kind: str) -> list[str]:
    return list(
        session.scalars(
            select(SegmentUri.record_uid)
            .where(
                SegmentUri.bucket == bucket,
                SegmentUri.segment_uid == uid,
                SegmentUri.kind == kind,
            )
            .order_by(SegmentUri.position)
        ).all()
    )


def list_sizes(session: Session, *, bucket: str, uid: str) -> dict[str, int]:
    """How many URIs each of the segment's lists holds, by kind, in one query (a kind
    with none is absent)."""
    rows = session.execute(
        select(SegmentUri.kind, func.count())
        .where(SegmentUri.bucket == bucket, SegmentUri.segment_uid == uid)
        .group_by(SegmentUri.kind)
    ).all()
    return {kind: int(n) for kind, n in rows}


def replace_lists(
    session: Session, *, bucket: str, uid: str, include: list[str], exclude: list[str]
) -> None:
    session.execute(
        delete(SegmentUri).where(SegmentUri.bucket == bucket, SegmentUri.segment_uid == uid)
    )
    rows = [
        {"bucket": bucket, "segment_uid": uid, "kind": kind, "record_uid": record, "position": i}
        for kind, uids in (("include", include), ("exclude", exclude))
        for i, record in enumerate(dict.fromkeys(uids))
    ]
    if rows:
        table = SegmentUri.__table__
        session.execute(table.insert(), rows)  # type: ignore[attr-defined]


def fieldsets(session: Session, *, bucket: str) -> Sequence[Fieldset]:
    return session.scalars(
        select(Fieldset).where(Fieldset.bucket == bucket).order_by(Fieldset.name, Fieldset.uid)
    ).all()


def fieldset(session: Session, *, bucket: str, uid: str) -> Fieldset | None:
    return session.get(Fieldset, (bucket, uid))


def postcode(session: Session, *, bucket: str, code: str) -> tuple[float, float] | None:
    row = session.get(Postcode, (bucket, normalise_postcode(code)))
    return (row.lat, row.lng) if row else None


def delete_postcodes(session: Session, *, bucket: str) -> None:
    session.execute(delete(Postcode).where(Postcode.bucket == bucket))


def insert_postcodes(session: Session, rows: list[dict[str, Any]]) -> None:
    """Rows of `bucket`, `postcode`, `lat`, `lng` (each row names its bucket)."""
    table: Any = Postcode.__table__
    session.execute(table.insert(), rows)


def normalise_postcode(code: str) -> str:
    return "".join(code.split()).upper()
