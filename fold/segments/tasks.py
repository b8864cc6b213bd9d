"""The periodic work of segments, run by the queue engine every minute: take the
snapshots whose schedule is due, and prune snapshots beyond their retention."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from fold.db.engine import unit_of_work
from fold.segments import history_repository as history
from fold.segments import repository, schedules, snapshots
from fold.timefmt import utcnow

log = logging.getLogger("fold.segments")

SCHEDULER = "/system/user/scheduler/"


def run_snapshots(sessions: sessionmaker[Session]) -> int:
    """Take every due snapshot, each in its own transaction; how many were taken. A
    schedule is claimed by moving its next run on, so two workers never take the same."""
    now = utcnow()
    with unit_of_work(sessions) as session:
        due = history.due_schedules(session, now=now)
        kept = history.schedules_with_retention(session)
    taken = 0
    for bucket, segment_uid in due:
        try:
            with unit_of_work(sessions) as session:
                taken += _take_due(session, bucket, segment_uid)
        except Exception:
            log.exception("scheduled snapshot of %s/%s failed", bucket, segment_uid)
    for bucket, segment_uid in kept:
        with unit_of_work(sessions) as session:
            found = history.schedule(session, bucket=bucket, segment_uid=segment_uid)
            if found is not None:
                schedules.prune(session, found, now)
    return taken


def _take_due(session: Session, bucket: str, segment_uid: str) -> int:
    found = history.schedule(session, bucket=bucket, segment_uid=segment_uid)
    if found is None or found.schedule is None or found.next_run is None:
        return 0
    claimed = history.claim_schedule(
        session,
        bucket=bucket,
        segment_uid=segment_uid,
        was=found.next_run,
        next_run=schedules.next_after(found.schedule, utcnow()),
    )
    if not claimed:
        return 0
    row = repository.get(session, bucket=bucket, uid=segment_uid)
    if row is None or row.record_state != "active":
        return 0
    snapshots.take(session, row=row, trigger="schedule", user_uri=SCHEDULER)
    log.info("snapshot of segment %s/%s taken", bucket, segment_uid)
    return 1
