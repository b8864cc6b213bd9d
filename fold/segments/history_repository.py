"""Every query over a segment's history (SPEC 12): its numbered versions, its membership
snapshots and their schedules. Each takes the bucket, except the two the periodic task
runs over every bucket's schedules. (Record numbers keep their own SQL, with the counter's
lock, in fold.segments.numbers.)"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, or_, select, update
from sqlalchemy.orm import Session

from fold.db.models import SegmentSnapshot, SegmentVersion, SnapshotSchedule

# Versions


def _versions_of(bucket: str, segment_uid: str) -> tuple[Any, ...]:
    return (SegmentVersion.bucket == bucket, SegmentVersion.segment_uid == segment_uid)


def last_version_number(session: Session, *, bucket: str, segment_uid: str) -> int:
    """The segment's newest version number; 0 before its first."""
    last = session.scalar(
        select(func.max(SegmentVersion.number)).where(*_versions_of(bucket, segment_uid))
    )
    return last or 0


def version(
    session: Session, *, bucket: str, segment_uid: str, number: int
) -> SegmentVersion | None:
    return session.get(SegmentVersion, (bucket, segment_uid, number))


def count_versions(session: Session, *, bucket: str, segment_uid: str) -> int:
    found = session.scalar(
        select(func.count()).select_from(SegmentVersion).where(*_versions_of(bucket, segment_uid))
    )
    return found or 0


def versions_newest_first(
    session: Session, *, bucket: str, segment_uid: str, offset: int, limit: int
) -> Sequence[SegmentVersion]:
    return session.scalars(
        select(SegmentVersion)
        .where(*_versions_of(bucket, segment_uid))
        .order_by(SegmentVersion.number.desc())
        .offset(offset)
        .limit(limit)
    ).all()


# Snapshots


def _snapshots_of(bucket: str, segment_uid: str) -> tuple[Any, ...]:
    return (SegmentSnapshot.bucket == bucket, SegmentSnapshot.segment_uid == segment_uid)


def snapshot(session: Session, *, bucket: str, uid: str) -> SegmentSnapshot | None:
    return session.get(SegmentSnapshot, (bucket, uid))


def count_snapshots(session: Session, *, bucket: str, segment_uid: str) -> int:
    found = session.scalar(
        select(func.count()).select_from(SegmentSnapshot).where(*_snapshots_of(bucket, segment_uid))
    )
    return found or 0


def snapshots_newest_first(
    session: Session, *, bucket: str, segment_uid: str, offset: int, limit: int
) -> Sequence[Row[*tuple[Any, ...]]]:
    """The page's snapshots without their bitmaps: every other column, and `size`, the
    bitmap's length in bytes."""
    columns = [c for c in SegmentSnapshot.__table__.c if c.name != "members"]
    return session.execute(
        select(*columns, func.length(SegmentSnapshot.members).label("size"))
        .where(*_snapshots_of(bucket, segment_uid))
        .order_by(SegmentSnapshot.taken.desc(), SegmentSnapshot.uid.desc())
        .offset(offset)
        .limit(limit)
    ).all()


def snapshot_at_or_before(
    session: Session, *, bucket: str, segment_uid: str, when: datetime
) -> SegmentSnapshot | None:
    return session.scalars(
        select(SegmentSnapshot)
        .where(*_snapshots_of(bucket, segment_uid), SegmentSnapshot.taken <= when)
        .order_by(SegmentSnapshot.taken.desc(), SegmentSnapshot.uid.desc())
        .limit(1)
    ).first()


def first_snapshot_taken(session: Session, *, bucket: str, segment_uid: str) -> datetime | None:
    return session.scalar(
        select(func.min(SegmentSnapshot.taken)).where(*_snapshots_of(bucket, segment_uid))
    )


def snapshot_uids_after_newest(
    session: Session, *, bucket: str, segment_uid: str, keep: int
) -> Sequence[str]:
    """The uids of the segment's snapshots other than its `keep` newest."""
    return session.scalars(
        select(SegmentSnapshot.uid)
        .where(*_snapshots_of(bucket, segment_uid))
        .order_by(SegmentSnapshot.taken.desc(), SegmentSnapshot.uid.desc())
        .offset(keep)
    ).all()


def snapshot_uids_taken_before(
    session: Session, *, bucket: str, segment_uid: str, cutoff: datetime
) -> Sequence[str]:
    return session.scalars(
        select(SegmentSnapshot.uid).where(
            *_snapshots_of(bucket, segment_uid), SegmentSnapshot.taken < cutoff
        )
    ).all()


def delete_snapshots(
    session: Session, *, bucket: str, segment_uid: str, uids: Collection[str]
) -> None:
    session.execute(
        delete(SegmentSnapshot).where(
            *_snapshots_of(bucket, segment_uid), SegmentSnapshot.uid.in_(uids)
        )
    )


# Schedules


def schedule(session: Session, *, bucket: str, segment_uid: str) -> SnapshotSchedule | None:
    return session.get(SnapshotSchedule, (bucket, segment_uid))


def due_schedules(session: Session, *, now: datetime) -> list[tuple[str, str]]:
    """(bucket, segment uid) of every bucket's schedules due by `now` (the periodic task)."""
    found = session.execute(
        select(SnapshotSchedule.bucket, SnapshotSchedule.segment_uid).where(
            SnapshotSchedule.next_run <= now
        )
    )
    return [(bucket, uid) for bucket, uid in found]


def schedules_with_retention(session: Session) -> list[tuple[str, str]]:
    """(bucket, segment uid) of every bucket's schedules that keep a limited number of
    snapshots or days (the periodic task prunes them)."""
    found = session.execute(
        select(SnapshotSchedule.bucket, SnapshotSchedule.segment_uid).where(
            or_(
                SnapshotSchedule.keep_last.is_not(None),
                SnapshotSchedule.keep_days.is_not(None),
            )
        )
    )
    return [(bucket, uid) for bucket, uid in found]


def claim_schedule(
    session: Session, *, bucket: str, segment_uid: str, was: datetime, next_run: datetime
) -> bool:
    """Move the schedule's next run from `was` on to `next_run`; False if another worker
    moved it first."""
    claimed = session.execute(
        update(SnapshotSchedule)
        .where(
            SnapshotSchedule.bucket == bucket,
            SnapshotSchedule.segment_uid == segment_uid,
            SnapshotSchedule.next_run == was,
        )
        .values(next_run=next_run)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]
