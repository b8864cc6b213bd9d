"""Starting a Mailchimp sync (SPEC 5) and what a segment shows of its last one."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from fold.auth.policies import Caller
from fold.config import Settings
from fold.db.models import Job, Segment
from fold.errors import Conflict, ValidationFailed
from fold.ids import make_uri, new_uid
from fold.mailchimp.client import MAX_MEMBERS
from fold.paging import read_int
from fold.params import read_flag
from fold.segments import service as segments
from fold.segments.syncs import ACTION, LIVE, SYNCED_TYPES
from fold.settings import service as bucket_settings
from fold.timefmt import utcnow

MAX_NAME = 100  # Mailchimp's longest segment name


class JobSender(Protocol):
    """Where a job goes once its transaction commits: the application's queue
    (`jobs.queue.Queue`), which sits above this package and is handed in."""

    def send_after_commit(self, session: Session, bucket: str, uid: str) -> None: ...


def read_params(params: dict[str, Any], row: Segment) -> dict[str, Any]:
    name = params.get("segment_name")
    if name is None or (isinstance(name, str) and not name.strip()):
        name = row.name
    if not isinstance(name, str):
        raise ValidationFailed("'segment_name' must be text.", param="segment_name")
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise ValidationFailed(
            f"'segment_name' is at most {MAX_NAME} characters (Mailchimp's limit).",
            param="segment_name",
        )
    size = read_int(
        params.get("mailchimp_batch_size"),
        param="mailchimp_batch_size",
        default=MAX_MEMBERS,
        low=1,
        high=MAX_MEMBERS,
    )
    return {
        "segment_name": name,
        "mailchimp_batch_size": size,
        "safe_mode": read_flag(params, "safe_mode"),
        "verbose": read_flag(params, "verbose"),
    }


def _check(session: Session, settings: Settings, row: Segment) -> None:
    if row.segment_type == "auxiliary":
        raise ValidationFailed(
            "An auxiliary segment holds no records to sync; choose one of its children.",
            param="segment",
        )
    if row.resource_type not in SYNCED_TYPES:
        raise ValidationFailed(
            f"Mailchimp syncs contacts, and the contacts of memberships; not "
            f"{row.resource_type} records.",
            param="segment",
        )
    try:
        config = bucket_settings.load(session, settings, bucket=row.bucket, section="mailchimp")
    except bucket_settings.Unreadable as exc:
        raise ValidationFailed(str(exc), param="mailchimp") from None
    if not config:
        raise ValidationFailed(
            "Mailchimp is not set up for this bucket: an administrator sets its API key and "
            "audience id (PUT /settings/v1/{bucket}/mailchimp or `fold mailchimp set`).",
            param="mailchimp",
        )


def lock_segment(session: Session, row: Segment, *, wait: bool = True) -> bool:
    """Hold the segment's row until the transaction ends, so two transactions cannot both
    find no live sync and both start one (PostgreSQL; SQLite writers queue anyway). Without
    `wait`, False when another transaction holds it."""
    locked = session.scalar(
        select(Segment.uid)
        .where(Segment.bucket == row.bucket, Segment.uid == row.uid)
        .with_for_update(skip_locked=not wait)
    )
    return locked is not None


def live_sync(session: Session, row: Segment) -> Job | None:
    """The segment's sync that is still waiting or running, if any."""
    return session.scalars(
        select(Job)
        .where(
            Job.bucket == row.bucket,
            Job.segment_uid == row.uid,
            Job.action == ACTION,
            Job.status.in_(LIVE),
        )
        .order_by(Job.created.desc(), Job.uid.desc())
        .limit(1)
    ).first()


def new_sync(
    session: Session, row: Segment, checked: dict[str, Any], user_uri: str, queue: JobSender
) -> Job:
    description = f"Sync segment '{row.name}' to Mailchimp segment '{checked['segment_name']}'"
    job = Job(
        bucket=row.bucket, uid=new_uid(), action=ACTION, description=description[:500],
        params={**checked, "batch_size": checked["mailchimp_batch_size"]},
        segment_uid=row.uid, undo_of=None, user_uri=user_uri,
        status="created", total=0, processed=0, succeeded=0, failed=0, skipped=0, errors=[],
        created=utcnow(), started=None, finished=None, lease_until=None, worker=None,
    )  # fmt: skip
    session.add(job)
    session.flush()
    queue.send_after_commit(session, row.bucket, job.uid)
    return job


def start_sync(
    session: Session,
    *,
    caller: Caller,
    uid: str,
    params: dict[str, Any],
    queue: JobSender,
    settings: Settings,
) -> dict[str, Any]:
    """Start a sync job; answers the receipt the reference documents. While a sync of the
    segment is waiting or running, asking again with the same options answers that sync's
    receipt (one sync of a segment at a time); other options are a 409."""
    caller.require("run_actions")
    row = segments.load(session, caller, uid)
    checked = read_params(params, row)
    _check(session, settings, row)
    lock_segment(session, row)
    job = live_sync(session, row)
    if job is not None:
        same = ("segment_name", "mailchimp_batch_size", "safe_mode")
        if any(job.params.get(k) != checked[k] for k in same):
            raise Conflict(
                "A Mailchimp sync of this segment is already waiting or running "
                f"({make_uri(caller.bucket, 'sheep_event', job.uid)}) with other options; "
                "ask again when it has finished."
            )
    else:
        job = new_sync(session, row, checked, caller.user_uri, queue)
    return {
        "bucket": caller.bucket,
        "journal_uri": make_uri(caller.bucket, "sheep_event", job.uid),
        "lambda_prefix": ACTION,
        "mailchimp_batch_size": checked["mailchimp_batch_size"],
        "safe_mode": checked["safe_mode"],
        "segment_name": checked["segment_name"],
        "segment_uri": make_uri(caller.bucket, "segment", row.uid),
        "verbose": checked["verbose"],
    }
