"""Starting exports (the SPEC 4 receipt), reading their journal, serving their files, and
the job that writes them."""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from fold.auth.policies import Caller, check_policy_name
from fold.config import Settings
from fold.db.engine import unit_of_work
from fold.db.models import ExportJournal, Job, Segment
from fold.db.queries import count
from fold.errors import Conflict, NotFound, ValidationFailed
from fold.exports import storage
from fold.exports.columns import export_columns
from fold.exports.gdpr import Gdpr, read_gdpr
from fold.exports.run import (
    CONTENT_TYPES,
    SUFFIXES,
    Counts,
    Document,
    Stopped,
    audit_bypass,
    write_export,
)
from fold.ids import is_uid, make_uri, new_uid
from fold.params import read_flag
from fold.segments import repository as segment_rows
from fold.segments import service as segments
from fold.segments.members import segment_filter, segment_schema, selection
from fold.segments.reads import sentence
from fold.timefmt import format_datetime, utcnow

log = logging.getLogger("fold.exports")
EXPORT_ACTION = "export"
LAYOUTS = ("table", "labels")
KNOWN_PARAMS = frozenset(
    {"template", "policy", "gdpr_bypass", "gdpr_bypass_reason", "gdpr_channel", "debug"}
)
LIVE = ("created", "running", "cancelling")


class Sender(Protocol):
    def send_after_commit(self, session: Session, bucket: str, uid: str) -> None: ...


def journal_uri(bucket: str, uid: str) -> str:
    return make_uri(bucket, "journal", uid)


def file_name(segment_name: str, fmt: str, day: date) -> str:
    """A name safe in any header and file system: letters, digits and dashes."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", segment_name).strip("-")[:60] or "segment"
    suffix = "labels" if fmt == "labels" else "export"
    return f"{stem}-{suffix}-{day.isoformat()}.{SUFFIXES[fmt]}"


def read_format(report_format: str, template: str | None) -> tuple[str, str | None]:
    """The format to write and the fieldset to use: a PDF's template may name a layout."""
    if report_format != "pdf":
        return report_format, template
    if template in (None, "", "table"):
        return "pdf", None
    if template == "labels":
        return "labels", None
    return "pdf", template


def check_params(params: dict[str, Any]) -> None:
    for name in params:
        if name not in KNOWN_PARAMS:
            raise ValidationFailed(
                f"{name!r} is not a parameter of an export; use {', '.join(sorted(KNOWN_PARAMS))}.",
                param=name,
            )


def start_export(
    session: Session,
    *,
    caller: Caller,
    uid: str,
    params: dict[str, Any],
    report_format: str,
    queue: Sender,
) -> dict[str, Any]:
    """Check everything, write the journal and its job, queue it; answers the receipt."""
    caller.require("export")
    check_params(params)
    row = segments.load(session, caller, uid)
    if row.segment_type == "auxiliary":
        raise ValidationFailed(
            "An auxiliary segment holds no records to export; choose one of its children.",
            param="uid",
        )
    template = params.get("template")
    if template is not None and not isinstance(template, str):
        raise ValidationFailed("template names a fieldset or a layout.", param="template")
    policy = params.get("policy")
    if policy not in (None, ""):
        check_policy_name(str(policy))
    fmt, fieldset = read_format("xlsx" if report_format == "excel" else report_format, template)
    columns = export_columns(session, row, fieldset)
    gdpr = read_gdpr(caller, params, default_channel="post" if fmt == "labels" else "all")
    debug = read_flag(params, "debug")
    receipt = {
        "bucket": caller.bucket,
        "uid": row.uid,
        "policy": caller.policy,
        "gdpr_bypass": gdpr.bypass,
        "gdpr_channel": gdpr.channel,
        "user_uri": caller.user_uri,
        "template": template or ("table" if fmt == "pdf" else None),
        "journal_uri": None,
        "report_format": report_format,
        "debug": debug,
        "use_mapreduce": False,
        # The reference's exports run in AWS Lambda functions of this prefix; Fold's run on
        # its own job queue, so the prefix names that kind of job.
        "lambda_prefix": EXPORT_ACTION,
    }
    if debug:  # checked and answered, nothing written or started
        return receipt
    now = utcnow()
    job_uid = new_uid()
    session.add(
        Job(
            bucket=caller.bucket, uid=job_uid, action=EXPORT_ACTION,
            description=f"Export of segment '{row.name}' ({fmt})"[:500],
            params={"report_format": fmt, "template": template, "gdpr_channel": gdpr.channel,
                    "gdpr_bypass": gdpr.bypass},
            segment_uid=row.uid, undo_of=None, user_uri=caller.user_uri, status="created",
            total=0, processed=0, succeeded=0, failed=0, skipped=0, errors=[], created=now,
            started=None, finished=None, lease_until=None, worker=None,
        )
    )  # fmt: skip
    session.add(
        ExportJournal(
            bucket=caller.bucket, uid=job_uid, segment_uid=row.uid, segment_name=row.name,
            report_format=fmt, fieldset=columns.fieldset, gdpr_channel=gdpr.channel,
            gdpr_bypass=gdpr.bypass, gdpr_bypass_reason=gdpr.reason, rows=0, left_out_gdpr=0,
            left_out_no_address=0, bypassed=0, user_uri=caller.user_uri, created=now,
            finished=None, file_name=None, content_type=None, size=None,
        )
    )  # fmt: skip
    session.flush()
    queue.send_after_commit(session, caller.bucket, job_uid)
    return {**receipt, "journal_uri": journal_uri(caller.bucket, job_uid)}


def load_journal(session: Session, caller: Caller, uid: str) -> tuple[ExportJournal, Job]:
    journal = session.get(ExportJournal, (caller.bucket, uid)) if is_uid(uid) else None
    job = session.get(Job, (caller.bucket, uid)) if journal is not None else None
    if journal is None or job is None:
        raise NotFound(f"No journal {uid} in this bucket.")
    return journal, job


def journal_out(journal: ExportJournal, job: Job) -> dict[str, Any]:
    b = journal.bucket
    ready = job.status == "completed" and journal.file_name is not None
    return {
        "uid": journal.uid,
        "uri": journal_uri(b, journal.uid),
        "resource_type": "journal",
        "record_state": "active",
        "title": f"Export of {journal.segment_name}",
        "display_value": f"Export of {journal.segment_name}",
        "status": job.status,
        "sheep_event": make_uri(b, "sheep_event", job.uid),
        "segment": make_uri(b, "segment", journal.segment_uid),
        "segment_name": journal.segment_name,
        "report_format": journal.report_format,
        "fieldset": journal.fieldset,
        "gdpr_channel": journal.gdpr_channel,
        "gdpr_bypass": journal.gdpr_bypass,
        "gdpr_bypass_reason": journal.gdpr_bypass_reason,
        "rows": journal.rows,
        "left_out_gdpr": journal.left_out_gdpr,
        "left_out_no_address": journal.left_out_no_address,
        "gdpr_bypassed": journal.bypassed,
        "user": journal.user_uri,
        "created": format_datetime(journal.created),
        "date": format_datetime(journal.created),
        "finished": format_datetime(journal.finished) if journal.finished else None,
        "file_name": journal.file_name,
        "content_type": journal.content_type,
        "size": journal.size,
        "download": f"/api/v2/{b}/journal/{journal.uid}/download" if ready else None,
        "errors": job.errors,
    }


def read_journal(session: Session, caller: Caller, uid: str) -> dict[str, Any]:
    caller.require("read")
    return journal_out(*load_journal(session, caller, uid))


def download(session: Session, caller: Caller, uid: str) -> ExportJournal:
    """The journal whose file may be served: 409 while the export runs or if it failed."""
    caller.require("export")
    journal, job = load_journal(session, caller, uid)
    if job.status in LIVE:
        raise Conflict(
            f"The export is still {job.status} ({job.processed:,} of {job.total:,} records); "
            "download it when its journal says completed."
        )
    if job.status != "completed":
        raise Conflict(f"The export {job.status}; there is no file. Start it again.")
    if journal.file_name is None or not storage.has_file(
        session, bucket=journal.bucket, journal_uid=journal.uid
    ):
        raise NotFound("This export's file has been removed; exports are kept for a while only.")
    return journal


def run_export(
    factory: sessionmaker[Session],
    settings: Settings,
    bucket: str,
    uid: str,
    renew: Callable[[Session], bool],
) -> str:
    """The export job: write the file to a temporary file, then store it and complete the
    journal in one transaction. A worker that dies leaves nothing half-stored; the job is
    resumed from the start by the next one."""
    with unit_of_work(factory) as session:
        job = session.get(Job, (bucket, uid))
        journal = session.get(ExportJournal, (bucket, uid))
        assert job is not None and journal is not None
        segment = session.get(Segment, (bucket, journal.segment_uid))
        if segment is None or segment.record_state != "active":
            return _fail(job, "the segment was deleted before the export ran")
        fmt = journal.report_format
        template = job.params.get("template")
        try:
            columns = export_columns(session, segment, None if fmt == "labels" else (
                None if template in (None, "", "table") else template))  # fmt: skip
        except ValidationFailed as exc:
            return _fail(job, exc.description)
        gdpr = Gdpr(journal.gdpr_channel, journal.gdpr_bypass, journal.gdpr_bypass_reason)
        # SQL, not the column index: a worker need not hold the bucket in memory to export.
        job.total = count(
            session, selection(bucket, segment.resource_type, segment_filter(session, segment))
        )
        document = describe(session, segment)
        name = file_name(segment.name, fmt, utcnow().date())
        session.expunge(segment)

    def progress(counts: Counts) -> bool:
        with unit_of_work(factory) as session:
            if not renew(session):
                return False
            current = session.get(Job, (bucket, uid))
            assert current is not None
            current.processed = counts.read
            return current.status != "cancelling"

    with tempfile.TemporaryDirectory(prefix="fold-export-") as tmp:
        path = str(Path(tmp) / name)
        try:
            with open(path, "wb") as out, factory() as reading:
                counts = write_export(
                    reading, segment=segment, fmt=fmt, columns=columns.columns, gdpr=gdpr,
                    out=out, tmpdir=tmp, document=document, progress=progress,
                )  # fmt: skip
        except Stopped:
            with unit_of_work(factory) as session:
                job = session.get(Job, (bucket, uid))
                if job is None or job.status != "cancelling":
                    return "not mine"
                job.status, job.finished, job.worker = "cancelled", utcnow(), None
                return "cancelled"
        with unit_of_work(factory) as session:
            if not renew(session):
                return "not mine"
            with open(path, "rb") as source:
                size = storage.store_file(session, bucket=bucket, journal_uid=uid, source=source)
            journal = session.get(ExportJournal, (bucket, uid))
            job = session.get(Job, (bucket, uid))
            assert journal is not None and job is not None
            journal.rows = counts.rows
            journal.left_out_gdpr = counts.left_out_gdpr
            journal.left_out_no_address = counts.left_out_no_address
            journal.bypassed = counts.bypassed
            journal.file_name, journal.content_type, journal.size = name, CONTENT_TYPES[fmt], size
            journal.finished = utcnow()
            job.total = counts.read
            job.processed, job.succeeded = counts.read, counts.rows
            job.skipped = counts.left_out_gdpr + counts.left_out_no_address
            job.status, job.finished, job.worker = "completed", utcnow(), None
            if gdpr.bypass:
                audit_bypass(
                    session, segment=segment, user_uri=journal.user_uri, fmt=fmt, gdpr=gdpr,
                    counts=counts, journal_uri=journal_uri(bucket, uid),
                )  # fmt: skip
    log.info("export %s/%s: %d rows, %d bytes", bucket, uid, counts.rows, size)
    return "completed"


def _fail(job: Job, reason: str) -> str:
    job.status, job.finished, job.worker = "failed", utcnow(), None
    job.errors = [{"uri": None, "reason": reason}]
    return "failed"


def describe(session: Session, segment: Segment) -> Document:
    schema = segment_schema(session, bucket=segment.bucket, resource_type=segment.resource_type)
    return Document(
        title=segment.name,
        sentence=segment.description or sentence(session, segment, schema),
        made=utcnow().strftime("%Y-%m-%d %H:%M UTC"),
    )


def purge(factory: sessionmaker[Session], settings: Settings) -> int:
    """Remove export files older than FOLD_EXPORT_RETENTION_DAYS."""
    cutoff = utcnow() - timedelta(days=settings.export_retention_days)
    with unit_of_work(factory) as session:
        removed = storage.purge_before(session, cutoff)
    if removed:
        log.info("removed %d export files made before %s", removed, cutoff)
    return removed


def find_segment(session: Session, caller: Caller, ref: str) -> Segment:
    """A live segment by uid, or by its exact name."""
    if is_uid(ref):
        return segments.load(session, caller, ref)
    found = [
        s
        for s in segment_rows.all_segments(session, bucket=caller.bucket)
        if s.name == ref and s.record_state == "active"
    ]
    if len(found) != 1:
        what = "No segment" if not found else f"{len(found)} segments"
        raise NotFound(f"{what} named {ref!r} in bucket {caller.bucket}; give its uid.")
    return found[0]


def export_to_file(
    factory: sessionmaker[Session],
    *,
    caller: Caller,
    segment_ref: str,
    fmt: str,
    template: str | None,
    params: dict[str, Any],
    out: IO[bytes],
    started: Callable[[int], None] | None = None,
    progress: Callable[[Counts], bool] | None = None,
) -> Counts:
    """An export written straight to a file (`fold export`, `fold bench exports`): the same
    columns, GDPR rule and writers as the API's jobs, and the same audit of a bypass."""
    caller.require("export")
    with unit_of_work(factory) as session:
        row = find_segment(session, caller, segment_ref)
        if row.segment_type == "auxiliary":
            raise ValidationFailed("An auxiliary segment holds no records to export.")
        columns = export_columns(session, row, None if fmt == "labels" else template,
                                 with_uri=fmt == "csv")  # fmt: skip
        gdpr = read_gdpr(caller, params, default_channel="post" if fmt == "labels" else "all")
        if started is not None:
            node = segment_filter(session, row)
            started(count(session, selection(row.bucket, row.resource_type, node)))
        document = describe(session, row)
        session.expunge(row)
    with tempfile.TemporaryDirectory(prefix="fold-export-") as tmp, factory() as reading:
        counts = write_export(
            reading, segment=row, fmt=fmt, columns=columns.columns, gdpr=gdpr, out=out,
            tmpdir=tmp, document=document, progress=progress,
        )  # fmt: skip
    if gdpr.bypass:
        with unit_of_work(factory) as session:
            audit_bypass(session, segment=row, user_uri=caller.user_uri, fmt=fmt, gdpr=gdpr,
                         counts=counts, journal_uri=None)  # fmt: skip
    return counts
