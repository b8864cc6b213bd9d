"""Starting, reading, cancelling and undoing jobs (SPEC 3.1 and 3.3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fold.auth.policies import Caller
from fold.config import Settings
from fold.db.models import Job, Segment
from fold.db.queries import count
from fold.errors import Conflict, NotFound, ValidationFailed
from fold.ids import CONTACT_TYPES, is_uid, make_uri, new_uid
from fold.jobs.actions import ACTIONS, INTERNAL, action_for
from fold.jobs.queue import Queue
from fold.paging import Paging, read_int
from fold.params import read_flag
from fold.records import contacts
from fold.rules.compile import normalise, rules_object
from fold.segments import service as segments
from fold.segments.members import base_query, make_context, segment_filter, selection
from fold.timefmt import format_datetime, utcnow

SAFE_LIMIT = 10_000
MAX_BATCH = 2500
# The parameters each endpoint reads (anything else sent is a 400, SPEC 9).
ACTION_PARAMS = ("action", "value", "field", "description", "verbose", "batch_size")
BULK_PARAMS = ("rules", "safe_mode", "batch_size", "verbose", "confirm_count", "description")
LIST_PARAMS = ("page", "page_size")


def job_uri(job: Job) -> str:
    return make_uri(job.bucket, "sheep_event", job.uid)


def _when(value: datetime | None) -> str | None:
    return format_datetime(value) if value else None


def job_out(job: Job) -> dict[str, Any]:
    return {
        "uid": job.uid,
        "uri": job_uri(job),
        "resource_type": "sheep_event",
        "display_value": job.description,
        "description": job.description,
        "action": job.action,
        "status": job.status,
        "total": job.total,
        "processed": job.processed,
        "succeeded": job.succeeded,
        "failed": job.failed,
        "skipped": job.skipped,
        "errors": job.errors,
        "segment": make_uri(job.bucket, "segment", job.segment_uid) if job.segment_uid else None,
        "undo_of": make_uri(job.bucket, "sheep_event", job.undo_of) if job.undo_of else None,
        "user": job.user_uri,
        "params": job.params,
        "created": _when(job.created),
        "started": _when(job.started),
        "finished": _when(job.finished),
        "record_state": "active",
    }


def _new_job(
    session: Session,
    caller: Caller,
    *,
    action: str,
    description: str,
    params: dict[str, Any],
    segment_uid: str | None,
    undo_of: str | None = None,
) -> Job:
    job = Job(
        bucket=caller.bucket, uid=new_uid(), action=action, description=description,
        params=params, segment_uid=segment_uid, undo_of=undo_of, user_uri=caller.user_uri,
        status="created", total=0, processed=0, succeeded=0, failed=0, skipped=0, errors=[],
        created=utcnow(), started=None, finished=None, lease_until=None, worker=None,
    )  # fmt: skip
    session.add(job)
    session.flush()
    return job


def _description(params: dict[str, Any]) -> str:
    description = params.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ValidationFailed(
            "Say what the job is for in 'description'; it goes into the audit trail.",
            param="description",
        )
    return description.strip()[:500]


def _data_segment(session: Session, caller: Caller, uid: str) -> Segment:
    row = segments.load(session, caller, uid)
    if row.segment_type == "auxiliary":
        raise ValidationFailed(
            "An auxiliary segment holds no records to act on; choose one of its children.",
            param="segment",
        )
    return row


def start_action(
    session: Session,
    *,
    caller: Caller,
    uid: str,
    params: dict[str, Any],
    queue: Queue,
    settings: Settings,
) -> dict[str, Any]:
    caller.require("run_actions")
    row = _data_segment(session, caller, uid)
    name = params.get("action")
    if name not in ACTIONS:
        raise ValidationFailed(
            f"{name!r} is not an action; use one of {', '.join(ACTIONS)}.", param="action"
        )
    action = ACTIONS[name]
    description = _description(params)
    if action.contacts_only and row.resource_type not in CONTACT_TYPES:
        raise ValidationFailed(
            f"{name} acts on contacts, not {row.resource_type} records.", param="action"
        )
    schema = make_context(session, bucket=caller.bucket, resource_type=row.resource_type).schema
    if action.for_contacts and not contacts.has_contacts(schema):
        raise ValidationFailed(
            f"{name} acts for contacts; {row.resource_type} records are not contacts and "
            "link to none.",
            param="action",
        )
    checked = action.check(session, caller.bucket, row.resource_type, schema, params, settings)
    checked["batch_size"] = _batch_size(params, default=200)
    if action.max_batch is not None:
        checked["batch_size"] = min(checked["batch_size"], action.max_batch)
    job = _new_job(
        session, caller, action=name, description=description, params=checked, segment_uid=row.uid
    )
    queue.send_after_commit(session, caller.bucket, job.uid)
    return {
        "action": make_uri(caller.bucket, "action", job.uid),
        "sheep_event": job_uri(job),
        "status": job.status,
        "segment_uri": make_uri(caller.bucket, "segment", row.uid),
        "user_uri": caller.user_uri,
        "description": description,
        "field": checked.get("field"),
        "value": checked.get("value"),
        "verbose": read_flag(params, "verbose"),
    }


def _batch_size(params: dict[str, Any], default: int = 100) -> int:
    return read_int(
        params.get("batch_size"), param="batch_size", default=default, low=1, high=MAX_BATCH
    )


def start_bulk(
    session: Session, *, caller: Caller, uid: str, params: dict[str, Any], queue: Queue, kind: str
) -> dict[str, Any]:
    """`action/replace` and `action/delete` (SPEC 3.3)."""
    caller.require("run_delete_action" if kind == "delete" else "run_actions")
    row = _data_segment(session, caller, uid)
    batch_size = _batch_size(params)
    safe_mode = read_flag(params, "safe_mode", default=True)
    ctx = make_context(session, bucket=caller.bucket, resource_type=row.resource_type)
    rules, problems = normalise(params.get("rules"), ctx)
    if problems:
        raise ValidationFailed.collect(problems)
    if kind == "delete" and safe_mode:
        _check_safe_delete(session, row, rules, ctx, params)
    description = (
        params.get("description") or f"{kind.capitalize()} every record of segment '{row.name}'"
    )
    job_params = {"rules": rules, "safe_mode": safe_mode, "batch_size": batch_size}
    job = _new_job(
        session,
        caller,
        action=kind,
        description=str(description)[:500],
        params=job_params,
        segment_uid=row.uid,
    )
    queue.send_after_commit(session, caller.bucket, job.uid)
    return {
        "notification_uri": job_uri(job),
        "lambda_params": {
            "uri": make_uri(caller.bucket, "segment", row.uid),
            "rules": rules_object(rules),
            "safe_mode": safe_mode,
            "batch_size": batch_size,
        },
    }


def _check_safe_delete(
    session: Session, row: Segment, rules: list[dict[str, Any]], ctx: Any, params: dict[str, Any]
) -> None:
    node = segment_filter(session, row, rules)
    selected = count(session, selection(row.bucket, row.resource_type, node))
    everything = count(session, base_query(row.bucket, row.resource_type))
    if selected and selected == everything:
        raise ValidationFailed(
            f"Safe mode: this would delete every {row.resource_type} record ({selected:,}). "
            "Narrow the segment, or send safe_mode=false.",
            param="safe_mode",
        )
    if selected > SAFE_LIMIT:
        confirm = params.get("confirm_count")
        try:
            confirmed = int(confirm) if confirm not in (None, "") else None
        except (TypeError, ValueError):
            confirmed = None
        if confirmed != selected:
            raise ValidationFailed(
                f"Safe mode: this would delete {selected:,} records; send confirm_count={selected} "
                "to confirm.",
                param="confirm_count",
            )


def action_out(job: Job) -> dict[str, Any]:
    """The action record a receipt's `action` URI names: what was asked, and its job."""
    return {
        "uid": job.uid,
        "uri": make_uri(job.bucket, "action", job.uid),
        "resource_type": "action",
        "display_value": job.description,
        "action": job.action,
        "field": job.params.get("field"),
        "value": job.params.get("value"),
        "description": job.description,
        "status": job.status,
        "sheep_event": job_uri(job),
        "segment_uri": make_uri(job.bucket, "segment", job.segment_uid)
        if job.segment_uid
        else None,
        "user_uri": job.user_uri,
        "created": _when(job.created),
        "record_state": "active",
    }


def load_job(session: Session, caller: Caller, uid: str) -> Job:
    job = session.get(Job, (caller.bucket, uid)) if is_uid(uid) else None
    if job is None:
        raise NotFound(f"No job {uid} in this bucket.")
    return job


def cancel(session: Session, *, caller: Caller, uid: str) -> dict[str, Any]:
    caller.require("run_actions")
    job = load_job(session, caller, uid)
    # Conditional updates: a worker may finish the job between our read and our write, and
    # a finished job must not be marked cancelling.
    moves = (
        ("created", {"status": "cancelled", "finished": utcnow()}),
        ("running", {"status": "cancelling"}),
    )
    moved = False
    for before, values in moves:
        changed: Any = session.execute(
            update(Job)
            .where(Job.bucket == caller.bucket, Job.uid == job.uid, Job.status == before)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        moved = moved or changed.rowcount == 1
    session.refresh(job)
    if not moved and job.status != "cancelling":
        raise Conflict(f"The job is {job.status}; only a created or running job can be cancelled.")
    return job_out(job)


def undo(session: Session, *, caller: Caller, uid: str, queue: Queue) -> dict[str, Any]:
    job = load_job(session, caller, uid)
    caller.require("run_delete_action" if job.action == "delete" else "run_actions")
    # A cancelled job is undone as far as it went: undo reverts the items it did.
    if job.status not in ("completed", "cancelled"):
        raise Conflict(f"The job is {job.status}; only a completed or cancelled job can be undone.")
    known = job.action in ACTIONS or job.action in INTERNAL  # an export is neither
    if not known or not action_for(job.action).undoable:
        raise Conflict(f"A {job.action} job cannot be undone.")
    earlier = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.bucket == caller.bucket, Job.undo_of == job.uid, Job.status != "failed")
    )
    if earlier:
        raise Conflict("This job has already been undone.")
    undo_job = _new_job(
        session, caller, action="undo", description=f"Undo: {job.description}"[:500],
        params={"batch_size": job.params.get("batch_size", 200)}, segment_uid=job.segment_uid,
        undo_of=job.uid,
    )  # fmt: skip
    queue.send_after_commit(session, caller.bucket, undo_job.uid)
    return job_out(undo_job)


def list_jobs(session: Session, *, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    caller.require("read")
    paging = Paging.read(params)
    stmt = select(Job).where(Job.bucket == caller.bucket)
    total = count(session, stmt)
    rows = session.scalars(
        stmt.order_by(Job.uid.desc()).offset(paging.offset).limit(paging.page_size)
    ).all()
    return {"results": [job_out(j) for j in rows], **paging.envelope(total)}
