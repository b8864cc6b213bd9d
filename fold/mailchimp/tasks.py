"""Automatic syncs of segments with `mailchimp_sync: true`, run every minute by the queue
engine's periodic task (SPEC 5).

A segment is synced when its definition changed after its last sync started and it has
then been quiet for FOLD_MAILCHIMP_SYNC_DELAY seconds, so several quick edits make one run;
and, when FOLD_MAILCHIMP_SYNC_INTERVAL is set, when its last sync started that many minutes
ago. Never while a sync of it is still live; never for a bucket without Mailchimp settings.
Each segment's row is locked while its sync is decided, so two workers' periodic tasks (or a
periodic task and a request) running at once never start two syncs of one segment."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fold.config import Settings
from fold.db.engine import unit_of_work
from fold.db.models import BucketSetting, Job, Segment
from fold.mailchimp.service import JobSender, lock_segment, new_sync, read_params
from fold.segments.syncs import ACTION, LIVE, SYNCED_TYPES
from fold.timefmt import utcnow

log = logging.getLogger("fold.mailchimp")
SYSTEM_USER = "/system/mailchimp/"


def due(session: Session, settings: Settings, segment: Segment) -> str | None:
    """Why the segment should sync now (`changed`, `scheduled`), or None."""
    last = session.scalars(
        select(Job)
        .where(Job.bucket == segment.bucket, Job.segment_uid == segment.uid, Job.action == ACTION)
        .order_by(Job.created.desc(), Job.uid.desc())
        .limit(1)
    ).first()
    now = utcnow()
    if last is not None and last.status in LIVE:
        return None
    quiet = now - segment.last_updated >= timedelta(seconds=settings.mailchimp_sync_delay)
    if quiet and (last is None or segment.last_updated > last.created):
        return "changed"
    interval = settings.mailchimp_sync_interval
    if interval > 0 and last is not None and now - last.created >= timedelta(minutes=interval):
        return "scheduled"
    return None


def start_due_syncs(factory: sessionmaker[Session], settings: Settings, queue: JobSender) -> int:
    """Start every sync that is due; answers how many started."""
    started = 0
    with unit_of_work(factory) as session:
        buckets = set(
            session.scalars(
                select(BucketSetting.bucket).where(BucketSetting.section == "mailchimp")
            )
        )
        if not buckets:
            return 0
        rows = session.scalars(
            select(Segment).where(
                Segment.mailchimp_sync.is_(True),
                Segment.record_state == "active",
                Segment.resource_type.in_(SYNCED_TYPES),
                Segment.segment_type != "auxiliary",
            )
        ).all()
        for row in rows:
            if row.bucket not in buckets:
                continue
            if not lock_segment(session, row, wait=False):
                continue  # another transaction is deciding (or starting) this one's sync
            why = due(session, settings, row)
            if why is None:
                continue
            new_sync(session, row, read_params({}, row), SYSTEM_USER, queue)
            log.info("bucket %s: segment %s: Mailchimp sync started (%s)", row.bucket, row.uid, why)
            started += 1
    return started
