"""Running a job: freeze its record set, then work through it in batches.

Each batch is one transaction: the records it changes, the audit entries, the items it
marks done and the job's totals commit together or not at all. A worker killed mid-batch
leaves that batch pending, so the next worker does it again from the start, and no record
is acted on twice. A lease on the job keeps two workers from running it at once."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, insert, literal, literal_column, null, select, text, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from fold.config import Settings
from fold.db.bulk import analyze, dumps
from fold.db.engine import busy_reason, unit_of_work
from fold.db.models import Job, JobItem, Record, Segment
from fold.errors import Unavailable
from fold.exports.service import EXPORT_ACTION, run_export
from fold.fields.service import schema_for
from fold.ids import STORED_TYPES, make_uri
from fold.jobs import setwise
from fold.jobs.actions import action_for
from fold.jobs.work import Action, LeaseLost, Loaded, Outcome, Run
from fold.records.bulk import raw_execute_many
from fold.records.clock import stamp
from fold.segments.index_or_sql import selected
from fold.segments.members import segment_filter, stored_types
from fold.timefmt import utcnow

log = logging.getLogger("fold.jobs")
ITEMS: Any = JobItem.__table__
MAX_ERRORS = 20
BUSY_RETRIES = 10
LIVE = ("created", "running", "cancelling")


PROCESS_TOKEN = secrets.token_hex(4)
"""Tells this process from an earlier one that had the same pid (a restarted container)."""


def worker_id() -> str:
    """Who holds a lease: host, process id, process token, thread."""
    return f"{socket.gethostname()}:{os.getpid()}:{PROCESS_TOKEN}:{threading.get_ident()}"


def holder_gone(worker: str | None) -> bool:
    """True when a lease names a process on this host that no longer runs, so its job can
    be taken over now rather than when the lease runs out. A holder on another host, or a
    live process that may have reused the pid, is left to its lease."""
    parts = (worker or "").split(":")
    if len(parts) != 4 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return parts[2] != PROCESS_TOKEN
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def claim(session: Session, bucket: str, uid: str, me: str, lease_seconds: int) -> bool:
    """Take or renew the job's lease; False when another live worker holds it."""
    now = utcnow()
    result: Any = session.execute(
        update(Job)
        .where(
            Job.bucket == bucket,
            Job.uid == uid,
            Job.status.in_(LIVE),
            (Job.worker.is_(None)) | (Job.worker == me) | (Job.lease_until < now),
        )
        .values(worker=me, lease_until=now + timedelta(seconds=lease_seconds))
    )
    return bool(result.rowcount == 1)


def freeze(session: Session, job: Job) -> int:
    """Write the job's record set as items; the totals are exact from here on. Each item
    goes in by one INSERT ... SELECT where SQL selects them (an undo's from the job it
    undoes; a segment's when the column index does not answer), without a row through
    Python. A job whose batches are all set-based (`setwise.Plan.from_chunks`) on records
    of one type freezes compactly: one row per `setwise.chunk_size` records (`_chunked`)."""
    bucket, uid = job.bucket, job.uid
    seq = func.row_number().over(order_by=ITEMS.c.seq) - 1
    columns = ["bucket", "job_uid", "seq", "state", "resource_type", "record_uid", "undo"]
    if job.undo_of:
        # What the per-record path kept: the notes of items whose record it changed.
        changed = text(
            "(job_items.undo ->> 'changed') = 'true'"
            if session.get_bind().dialect.name == "postgresql"
            else "json_type(job_items.undo, '$.changed') = 'true'"
        )
        originals = select(
            literal(bucket), literal(uid), seq, literal("pending"), ITEMS.c.resource_type,
            ITEMS.c.record_uid, ITEMS.c.undo,
        ).where(
            ITEMS.c.bucket == bucket, ITEMS.c.job_uid == job.undo_of, ITEMS.c.state == "done",
            changed,
        )  # fmt: skip
        total = _insert_selected(session, job, columns, originals)
        if total > 1000:
            analyze(session, "job_items")
        return total
    segment = session.get(Segment, (job.bucket, job.segment_uid))
    assert segment is not None
    node = segment_filter(session, segment, job.params.get("rules") or [])
    found = selected(session, bucket=bucket, resource_type=segment.resource_type, node=node)
    types = stored_types(segment.resource_type)
    plan = _setwise_plan(session, job, _schemas(session, bucket))
    if len(types) == 1 and plan is not None and plan.from_chunks:
        return _chunked(session, job, types[0], found)
    if isinstance(found, list):
        total = _insert_items(session, bucket, uid, found)
    else:
        keys = found.with_only_columns(
            literal(bucket), literal(uid), func.row_number().over(order_by=Record.uid) - 1,
            literal("pending"), Record.resource_type, Record.uid, null(),
        )  # fmt: skip
        total = _insert_selected(session, job, columns, keys)
    if total > 1000:
        analyze(session, "job_items")
    return total


def _chunked(
    session: Session, job: Job, resource_type: str, found: list[tuple[str, str]] | Any
) -> int:
    """The record set as chunk rows: seq -1, -2, ... in uid order, state `frozen`, the
    chunk's first uid as `record_uid` and `{"first": n, "uids": [...]}` as `undo`, where
    n is the seq the chunk's first record's item will have (the chunk's k-th uid in uid
    order gets n + k). Batches turn them into items (`setwise.run_chunk`)."""
    bucket, uid = job.bucket, job.uid
    size = setwise.chunk_size(int(job.params.get("batch_size") or 100))
    if isinstance(found, list):
        uids = [u for _, u in found]
        rows = [
            (bucket, uid, -(start // size) - 1, "frozen", resource_type, uids[start],
             dumps({"first": start, "uids": uids[start : start + size]}))
            for start in range(0, len(uids), size)
        ]  # fmt: skip
        json_mark = "?::jsonb" if session.get_bind().dialect.name == "postgresql" else "?"
        raw_execute_many(
            session,
            "INSERT INTO job_items (bucket, job_uid, seq, state, resource_type, record_uid, "
            f"undo) VALUES (?, ?, ?, ?, ?, ?, {json_mark})",
            rows,
        )
        return len(uids)
    postgres = session.get_bind().dialect.name == "postgresql"
    keys = found.with_only_columns(
        Record.uid.label("uid"), (func.row_number().over(order_by=Record.uid) - 1).label("n")
    ).subquery()
    # Integer division as both databases do it (`//` would be floor() of a float).
    chunk = keys.c.n.op("/")(literal_column(str(int(size))))
    if postgres:
        # One statement over the whole selection: JIT would compile it for longer than it
        # runs, and the grouping sorts a million keys in memory rather than on disk.
        session.execute(text("SET LOCAL jit = off"))
        session.execute(text("SET LOCAL work_mem = '128MB'"))
    if postgres:  # in uid order, as the batch numbers them
        chunk_json = func.jsonb_build_object(
            "first",
            func.min(keys.c.n),
            "uids",
            func.jsonb_agg(aggregate_order_by(keys.c.uid, keys.c.n)),
        )
    else:
        chunk_json = func.json_object(
            "first", func.min(keys.c.n), "uids", func.json_group_array(keys.c.uid)
        )
    grouped = select(
        literal(bucket), literal(uid), -chunk - 1, literal("frozen"), literal(resource_type),
        func.min(keys.c.uid), chunk_json,
    ).group_by(chunk)  # fmt: skip
    columns = ["bucket", "job_uid", "seq", "state", "resource_type", "record_uid", "undo"]
    session.execute(insert(ITEMS).from_select(columns, grouped))
    length = (
        "jsonb_array_length(undo -> 'uids')" if postgres else "json_array_length(undo, '$.uids')"
    )
    total = session.scalar(
        text(
            f"SELECT COALESCE(SUM({length}), 0) FROM job_items "
            "WHERE bucket = :bucket AND job_uid = :job AND state = 'frozen'"
        ),
        {"bucket": bucket, "job": uid},
    )
    return int(total or 0)


def _insert_selected(session: Session, job: Job, columns: list[str], rows: Any) -> int:
    session.execute(insert(ITEMS).from_select(columns, rows))
    # Counted, not the statement's rowcount (which psycopg does not give for this).
    items = select(func.count()).where(ITEMS.c.bucket == job.bucket, ITEMS.c.job_uid == job.uid)
    return int(session.scalar(items) or 0)


def _insert_items(session: Session, bucket: str, uid: str, keys: list[tuple[str, str]]) -> int:
    """Pending items for `keys`, straight to the driver (COPY on PostgreSQL)."""
    connection = session.connection()
    raw: Any = connection.connection.dbapi_connection
    rows = (
        (bucket, uid, seq, "pending", kind, record_uid)
        for seq, (kind, record_uid) in enumerate(keys)
    )
    names = "bucket, job_uid, seq, state, resource_type, record_uid"
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY job_items ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        cursor = raw.cursor()
        try:
            cursor.executemany(f"INSERT INTO job_items ({names}) VALUES (?, ?, ?, ?, ?, ?)", rows)
        finally:
            cursor.close()
    return len(keys)


def _schemas(session: Session, bucket: str) -> dict[str, Any]:
    return {t: schema_for(session, bucket=bucket, resource_type=t) for t in STORED_TYPES}


@dataclass(slots=True)
class Item:
    """One pending item of a batch."""

    seq: int
    resource_type: str
    record_uid: str
    undo: dict[str, Any] | None


def _read_loaded(
    session: Session, bucket: str, resource_type: str, uids: list[str], *, lock: bool
) -> list[Loaded]:
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    raw: Any = connection.connection.dbapi_connection
    out: list[Loaded] = []
    for start in range(0, len(uids), 500):  # SQLite binds at most 999 parameters at once
        part = uids[start : start + 500]
        if postgres:
            sql = (
                "SELECT uid, data, record_state, display_value, search_text, unique_key "
                "FROM records WHERE bucket = %s AND resource_type = %s AND uid = ANY(%s)"
                + (" FOR UPDATE" if lock else "")
            )
            params: list[Any] = [bucket, resource_type, part]
        else:
            marks = ", ".join("?" for _ in part)
            sql = (
                "SELECT uid, data, record_state, display_value, search_text, unique_key "
                f"FROM records WHERE bucket = ? AND resource_type = ? AND uid IN ({marks})"
            )
            params = [bucket, resource_type, *part]
        cursor = raw.cursor()
        try:
            cursor.execute(sql, params)
            for uid, data, state, shown, search, key in cursor.fetchall():
                document = json.loads(data) if isinstance(data, str | bytes) else data
                out.append(Loaded(bucket, resource_type, uid, document, state, shown, search, key))
        finally:
            cursor.close()
    return out


def _load_records(
    session: Session, bucket: str, items: list[Item], *, lock: bool, light: bool
) -> list[Any]:
    by_type: dict[str, list[str]] = {}
    for item in items:
        by_type.setdefault(item.resource_type, []).append(item.record_uid)
    found: dict[tuple[str, str], Any] = {}
    if lock:
        # Locked until the batch commits, after the bucket's change clock as every writer
        # does: a record changed meanwhile (a PATCH) is read after that change, not over it.
        stamp(session, bucket)
    for resource_type, uids in by_type.items():
        where = (
            Record.bucket == bucket, Record.resource_type == resource_type, Record.uid.in_(uids)
        )  # fmt: skip
        if light:
            # Columns, straight from the driver: a record-only action needs nothing else.
            for loaded in _read_loaded(session, bucket, resource_type, uids, lock=lock):
                found[(resource_type, loaded.uid)] = loaded
        else:
            query = select(Record).where(*where)
            rows = session.scalars(query.with_for_update() if lock else query).all()
            found.update({(r.resource_type, r.uid): r for r in rows})
    return [found.get((i.resource_type, i.record_uid)) for i in items]


def _record_outcomes(
    session: Session, job: Job, items: list[Item], outcomes: list[Outcome]
) -> None:
    updates = []
    tally = {"done": 0, "failed": 0, "skipped": 0}
    errors = list(job.errors)
    for item, outcome in zip(items, outcomes, strict=True):
        updates.append(
            {
                "k_bucket": job.bucket,
                "k_job": job.uid,
                "k_seq": item.seq,
                "state": outcome.state,
                "undo": outcome.undo,
            }
        )
        tally[outcome.state if outcome.state in tally else "skipped"] += 1
        if outcome.state == "failed" and len(errors) < MAX_ERRORS:
            uri = make_uri(job.bucket, item.resource_type, item.record_uid)
            errors.append({"uri": uri, "reason": outcome.reason})
    job.processed += len(items)
    job.succeeded += tally["done"]
    job.failed += tally["failed"]
    job.skipped += tally["skipped"]
    if len(errors) != len(job.errors):
        job.errors = errors
    json_mark = "?::jsonb" if session.get_bind().dialect.name == "postgresql" else "?"
    raw_execute_many(
        session,
        f"UPDATE job_items SET state = ?, undo = {json_mark} "
        "WHERE bucket = ? AND job_uid = ? AND seq = ? AND state = 'pending'",
        [
            (u["state"], None if u["undo"] is None else dumps(u["undo"]), u["k_bucket"],
             u["k_job"], u["k_seq"])
            for u in updates
        ],
    )  # fmt: skip


def begin_job(
    factory: sessionmaker[Session], settings: Settings, bucket: str, uid: str
) -> bool | None:
    """Take the job's lease and, if it has not started, freeze its record set. Answers
    whether the job is an export (which has no items), None when another worker holds it."""
    with unit_of_work(factory) as session:
        if not claim(session, bucket, uid, worker_id(), settings.job_lease_seconds):
            return None
        job = session.get(Job, (bucket, uid))
        assert job is not None
        # An export writes one file from the whole selection: it has no items to freeze.
        whole = job.action == EXPORT_ACTION
        if job.status == "created":
            job.total = 0 if whole else freeze(session, job)
            job.status = "running"
            job.started = utcnow()
        return whole


def run_job(factory: sessionmaker[Session], settings: Settings, bucket: str, uid: str) -> str:
    """Run (or resume) a job to its end; answers its final status."""
    me = worker_id()
    lease = settings.job_lease_seconds
    whole = begin_job(factory, settings, bucket, uid)
    if whole is None:
        return "not mine"
    # Field schemas as they are when the job (re)starts, read once rather than per batch.
    with unit_of_work(factory) as session:
        schemas = {} if whole else _schemas(session, bucket)
    if whole:
        try:
            return run_export(
                factory, settings, bucket, uid, lambda s: claim(s, bucket, uid, me, lease)
            )
        except Exception:
            log.exception("export %s/%s failed", bucket, uid)
            _fail(factory, bucket, uid)
            return "failed"
    client = httpx.Client(timeout=settings.webhook_timeout, follow_redirects=False)
    busy = 0
    try:
        while True:
            try:
                status = _batch(factory, settings, bucket, uid, me, client, schemas)
            except (DBAPIError, Unavailable) as exc:
                # A batch is one transaction: when the database is busy it rolled back
                # whole, and is simply tried again.
                busy += 1
                other = isinstance(exc, DBAPIError) and busy_reason(exc) is None
                if other or busy > BUSY_RETRIES:
                    raise
                time.sleep(min(0.05 * 2**busy, 2.0))
                continue
            busy = 0
            if status != "running":
                return status
    except LeaseLost:
        log.warning("job %s/%s: another worker took it over", bucket, uid)
        return "not mine"
    except Exception:
        log.exception("job %s/%s failed", bucket, uid)
        _fail(factory, bucket, uid)
        return "failed"
    finally:
        client.close()


def _fail(factory: sessionmaker[Session], bucket: str, uid: str) -> None:
    with unit_of_work(factory) as session:
        job = session.get(Job, (bucket, uid))
        if job is not None and job.status in LIVE:
            job.status = "failed"
            job.finished = utcnow()
            job.errors = [
                *job.errors,
                {"uri": None, "reason": "the job stopped on an internal error"},
            ][-MAX_ERRORS:]


def _batch(
    factory: sessionmaker[Session],
    settings: Settings,
    bucket: str,
    uid: str,
    me: str,
    client: httpx.Client,
    schemas: dict[str, Any],
) -> str:
    with unit_of_work(factory) as session:
        if not claim(session, bucket, uid, me, settings.job_lease_seconds):
            return "not mine"
        job = session.get(Job, (bucket, uid))
        assert job is not None
        if job.status == "cancelling":
            job.status, job.finished, job.worker = "cancelled", utcnow(), None
            return "cancelled"
        size = int(job.params.get("batch_size") or 100)
        action = action_for(job.action)
        plan = _setwise_plan(session, job, schemas)
        pending = (ITEMS.c.bucket == bucket, ITEMS.c.job_uid == uid, ITEMS.c.state == "pending")
        item_columns = (ITEMS.c.seq, ITEMS.c.resource_type, ITEMS.c.record_uid, ITEMS.c.undo)
        if plan is None:
            items = [
                Item(*row)
                for row in session.execute(
                    select(*item_columns).where(*pending).order_by(ITEMS.c.seq).limit(size)
                )
            ]
            chunk = None if items else setwise.next_chunk(session, bucket=bucket, job_uid=uid)
            if chunk is not None:
                # A compact freeze met a batch that is not set-based (the field's schema
                # changed since): the next chunk becomes pending items.
                setwise.expand_chunk(session, chunk, bucket=bucket, job_uid=uid)
                return "running"
        else:
            # The plain items of the batch in a few statements; what they leave pending
            # (deleted records, odd documents) goes through the action record by record.
            window = select(ITEMS.c.seq).where(*pending).order_by(ITEMS.c.seq).limit(size)
            seqs = window.subquery()
            lo, hi, count = session.execute(
                select(func.min(seqs.c.seq), func.max(seqs.c.seq), func.count())
            ).one()
            chunk = None
            if lo is None:
                chunk = setwise.next_chunk(session, bucket=bucket, job_uid=uid)
                if chunk is not None and not plan.from_chunks:
                    setwise.expand_chunk(session, chunk, bucket=bucket, job_uid=uid)
                    return "running"
            items = []
            if lo is not None or chunk is not None:
                version, now = stamp(session, bucket), utcnow()
                if chunk is not None:
                    lo, hi, count = chunk.first, chunk.first + chunk.count - 1, chunk.count
                    done = setwise.run_chunk(
                        session, plan, chunk, bucket=bucket, job_uid=uid, version=version,
                        now=now, user_uri=job.user_uri, message=job.description,
                    )  # fmt: skip
                else:
                    done = setwise.run_batch(
                        session, plan, bucket=bucket, job_uid=uid, lo=lo, hi=hi,
                        version=version, now=now, user_uri=job.user_uri,
                        message=job.description,
                    )  # fmt: skip
                job.processed += done
                job.succeeded += done
                if done == count:
                    return "running"
                items = [
                    Item(*row)
                    for row in session.execute(
                        select(*item_columns)
                        .where(*pending, ITEMS.c.seq.between(lo, hi))
                        .order_by(ITEMS.c.seq)
                    )
                ]
                if not items:
                    return "running"
        if not items:
            if action.finish is not None:
                return _finish(
                    session, job, action, _run(session, settings, job, client, schemas, me)
                )
            job.status, job.finished, job.worker = "completed", utcnow(), None
            return "completed"
        run = Run(
            session=session,
            bucket=bucket,
            user_uri=job.user_uri,
            description=job.description,
            params=job.params,
            settings=settings,
            schemas=schemas,
            job_uid=uid,
            http_client=client,
            undo_infos=[i.undo for i in items],
            checkpoint=lambda: _checkpoint(session, bucket, uid, me, settings.job_lease_seconds),
        )
        records = _load_records(
            session, bucket, items, lock=action.writes_records, light=action.light
        )
        outcomes = action.apply(run, records)
        _record_outcomes(session, job, items, outcomes)
        if run.notes:
            job.params = {**job.params, **run.notes}
        return "running"


def _setwise_plan(session: Session, job: Job, schemas: dict[str, Any]) -> setwise.Plan | None:
    """The set-based plan for the job's batches, when its action has one."""
    dialect = session.get_bind().dialect.name
    undoing = None
    if job.action == "undo" and job.undo_of:
        original = session.get(Job, (job.bucket, job.undo_of))
        undoing = None if original is None else (original.action, original.params)
    return setwise.plan_for(dialect, job.action, job.params, schemas, undoing=undoing)


def _run(
    session: Session,
    settings: Settings,
    job: Job,
    client: httpx.Client,
    schemas: dict[str, Any],
    me: str,
) -> Run:
    return Run(
        session=session,
        bucket=job.bucket,
        user_uri=job.user_uri,
        description=job.description,
        params=job.params,
        settings=settings,
        schemas=schemas,
        job_uid=job.uid,
        http_client=client,
        checkpoint=lambda: _checkpoint(
            session, job.bucket, job.uid, me, settings.job_lease_seconds
        ),
    )


def _finish(session: Session, job: Job, action: Action, run: Run) -> str:
    assert action.finish is not None
    status = "completed"
    try:
        action.finish(run)
    except Exception as exc:
        if action.failure is None or not isinstance(exc, action.failure):
            raise
        status = "failed"
        job.errors = [*job.errors, {"uri": None, "reason": str(exc)}][-MAX_ERRORS:]
    if run.notes:
        job.params = {**job.params, **run.notes}
    job.status, job.finished, job.worker = status, utcnow(), None
    return status


def _checkpoint(session: Session, bucket: str, uid: str, me: str, lease_seconds: int) -> None:
    """Commit the batch's work so far, if this worker still holds the job's lease."""
    if not claim(session, bucket, uid, me, lease_seconds):
        session.rollback()
        raise LeaseLost(f"{bucket}/{uid}")
    session.commit()
