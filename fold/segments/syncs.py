"""What a segment shows of its latest Mailchimp sync."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fold.db.models import Job, Segment
from fold.ids import make_uri
from fold.timefmt import format_datetime

ACTION = "sync_mailchimp"
LIVE = ("created", "running", "cancelling")
# The segments a sync takes (SPEC 2.2): contacts, and memberships, whose sync sends the
# contact each membership links to.
SYNCED_TYPES = ("person", "organisation", "contact", "membership")


def last_sync(session: Session, row: Segment) -> dict[str, Any] | None:
    """The segment's latest sync: when, added, removed, failed, status."""
    job = session.scalars(
        select(Job)
        .where(Job.bucket == row.bucket, Job.segment_uid == row.uid, Job.action == ACTION)
        .order_by(Job.created.desc(), Job.uid.desc())
        .limit(1)
    ).first()
    if job is None:
        return None
    when = job.finished or job.started or job.created
    return {
        "when": format_datetime(when),
        "status": job.status,
        "upserted": job.succeeded,
        "added": int(job.params.get("mailchimp_added", 0)),
        "removed": int(job.params.get("mailchimp_removed", 0)),
        "failed": job.failed,
        "skipped": job.skipped,
        "segment_name": job.params.get("segment_name"),
        "job": make_uri(row.bucket, "sheep_event", job.uid),
        "running": job.status in LIVE,
    }
