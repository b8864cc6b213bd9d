"""When each segment's snapshots are taken (daily, weekly or a cron expression, in UTC)
and how long they are kept; the queue engine's periodic task takes the due ones and
prunes (fold.segments.tasks)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cronsim import CronSim, CronSimError
from sqlalchemy.orm import Session

from fold.auth.policies import Caller
from fold.db.models import Segment, SnapshotSchedule
from fold.errors import Problem, ValidationFailed
from fold.ids import make_uri
from fold.paging import read_int
from fold.segments import history_repository as history
from fold.segments import service
from fold.timefmt import format_datetime, utcnow

NAMED = {"daily": "0 0 * * *", "weekly": "0 0 * * 1"}
OFF = ("", "none", "off")


def read_schedule(raw: Any) -> str | None:
    """`daily`, `weekly`, a five-field cron expression, or none (no scheduled snapshots)."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValidationFailed("schedule is daily, weekly or a cron expression.", param="schedule")
    text = " ".join(raw.split())
    if text.lower() in OFF:
        return None
    if text.lower() in NAMED:
        return text.lower()
    try:
        CronSim(text, utcnow())
    except (CronSimError, ValueError) as exc:
        raise ValidationFailed(
            f"schedule {text!r} is not daily, weekly or a five-field cron expression ({exc}).",
            param="schedule",
        ) from None
    if len(text.split()) != 5:
        raise ValidationFailed("a cron schedule has five fields.", param="schedule")
    return text


def next_after(schedule: str, moment: datetime) -> datetime:
    """The first time the schedule names after `moment` (UTC)."""
    result: datetime = next(CronSim(NAMED.get(schedule, schedule), moment))
    return result


def schedule_out(row: Segment, found: SnapshotSchedule | None) -> dict[str, Any]:
    return {
        "segment": make_uri(row.bucket, "segment", row.uid),
        "schedule": found.schedule if found else None,
        "keep_last": found.keep_last if found else None,
        "keep_days": found.keep_days if found else None,
        "next_run": format_datetime(found.next_run) if found and found.next_run else None,
    }


def get(session: Session, row: Segment) -> dict[str, Any]:
    return schedule_out(row, history.schedule(session, bucket=row.bucket, segment_uid=row.uid))


def put_for(
    session: Session, *, caller: Caller, uid: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Set the segment's schedule (`edit_segment`)."""
    caller.require("edit_segment")
    caller.require("read")
    return put(session, service.load(session, caller, uid), params)


def put(session: Session, row: Segment, params: dict[str, Any]) -> dict[str, Any]:
    """Set the schedule and retention (fields not sent are cleared). A new schedule takes
    its first snapshot at the next check, so `changes` has a starting point at once."""
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    try:
        values["schedule"] = read_schedule(params.get("schedule"))
    except ValidationFailed as exc:
        problems.extend(exc.problems or [Problem(exc.description, exc.param)])
    for name in ("keep_last", "keep_days"):
        try:
            raw = params.get(name)
            empty = raw in (None, "")
            values[name] = None if empty else read_int(raw, param=name, default=0, low=1)
        except ValidationFailed as exc:
            problems.extend(exc.problems or [Problem(exc.description, exc.param)])
    if problems:
        raise ValidationFailed.collect(problems)
    found = history.schedule(session, bucket=row.bucket, segment_uid=row.uid)
    if found is None:
        found = SnapshotSchedule(bucket=row.bucket, segment_uid=row.uid, next_run=None)
        session.add(found)
    if values["schedule"] is None:
        found.next_run = None
    elif values["schedule"] != found.schedule:
        found.next_run = utcnow()
    found.schedule = values["schedule"]
    found.keep_last = values["keep_last"]
    found.keep_days = values["keep_days"]
    session.flush()
    return schedule_out(row, found)


def prune(session: Session, found: SnapshotSchedule, now: datetime) -> int:
    """Drop the segment's snapshots beyond its retention; how many were dropped."""
    of = {"bucket": found.bucket, "segment_uid": found.segment_uid}
    doomed: set[str] = set()
    if found.keep_last:
        doomed.update(history.snapshot_uids_after_newest(session, **of, keep=found.keep_last))
    if found.keep_days:
        cutoff = now - timedelta(days=found.keep_days)
        doomed.update(history.snapshot_uids_taken_before(session, **of, cutoff=cutoff))
    if doomed:
        history.delete_snapshots(session, **of, uids=doomed)
    return len(doomed)
