"""A worker killed with SIGKILL in the middle of a 50,000-record job: a new worker finishes
it, and every record is acted on exactly once. Runs real `fold worker` processes on the
embedded (SQLite) queue and on the Redis queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from fold.auth.policies import Caller
from fold.buckets.service import ensure_bucket
from fold.config import Settings
from fold.db.bulk import analyze
from fold.db.engine import unit_of_work
from fold.db.models import AuditEntry, Job, Record
from fold.fields.builtin import BUILTIN
from fold.ids import new_uid
from fold.jobs import service as jobs
from fold.jobs.queue import Queue
from fold.records.bulk import insert_clean
from fold.segments import service as segments
from tests.conftest import DATABASES, Database

PEOPLE = 50_000
# The Redis database the queue tests use (and empty); FOLD_TEST_REDIS in the README.
REDIS_URL = os.environ.get("FOLD_TEST_REDIS", "redis://127.0.0.1:6379/15")
LEASE = 2


def redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL).ping())
    except redis.RedisError:
        return False


def fill(db: Database, bucket: str) -> None:
    with unit_of_work(db.sessions) as session:
        ensure_bucket(session, bucket)
    now = datetime(2026, 1, 1)
    rows = [
        ("person", new_uid(), {"first_name": f"P{i}", "tags": ["seed"]}, now) for i in range(PEOPLE)
    ]
    for start in range(0, PEOPLE, 10_000):
        with unit_of_work(db.sessions) as session:
            insert_clean(
                session,
                bucket=bucket,
                user_uri="/test/",
                message="seed",
                rows=rows[start : start + 10_000],
                schemas={"person": BUILTIN["person"]},
            )
    with unit_of_work(db.sessions) as session:
        analyze(session, "records", "audit_entries")


def worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "fold.cli.main", "worker", "--workers", "1"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def job_row(db: Database, bucket: str, uid: str) -> Job:
    with unit_of_work(db.sessions) as session:
        found = session.get(Job, (bucket, uid))
        assert found is not None
        return found


def wait_for(
    predicate: Any, stall: float, what: str, detail: Any = lambda: "", progress: Any = None
) -> None:
    """Wait until `predicate()` holds. It fails only when nothing moves for `stall` seconds:
    `progress()` (a count of work done) changing restarts the clock, so a loaded machine
    that is slow but working cannot fail it."""
    deadline = time.monotonic() + stall
    last = progress() if progress else None
    while True:
        if predicate():
            return
        if progress is not None:
            now = progress()
            if now != last:
                last, deadline = now, time.monotonic() + stall
        if time.monotonic() > deadline:
            raise AssertionError(f"no progress for {stall} s waiting for {what}: {detail()}")
        time.sleep(0.05)


# The embedded queue with SQLite, as `make run` has it; Redis with PostgreSQL, as at scale.
DATABASE_FOR = {
    "sqlite": "sqlite",
    "redis": "postgresql" if "postgresql" in DATABASES else "sqlite",
}


@pytest.mark.parametrize("queue_kind", ["sqlite", "redis"])
def test_killed_worker_is_resumed_exactly_once(
    database: Database, queue_kind: str, tmp_path: Path
) -> None:
    if database.name != DATABASE_FOR[queue_kind]:
        pytest.skip(f"the {queue_kind} queue is tested with {DATABASE_FOR[queue_kind]}")
    if queue_kind == "redis" and not redis_up():
        pytest.skip("Redis is not reachable")
    bucket = f"resume-{queue_kind}-{new_uid()[-6:]}"
    fill(database, bucket)
    settings = Settings(
        database_url=database.url,
        redis_url=REDIS_URL if queue_kind == "redis" else None,
        data_dir=str(tmp_path),
        job_lease_seconds=LEASE,
    )
    queue = Queue(settings, database.engine)
    queue.huey.flush()
    caller = Caller(bucket=bucket, policy="admin", user_uri="/test/user/")
    with unit_of_work(database.sessions) as session:
        segment, _ = segments.create(
            session, caller=caller, params={"name": "All", "resource_type": "person"}
        )
        params = {"action": "add_tag", "value": "resumed", "description": "Resume test"}
        receipt = jobs.start_action(
            session,
            caller=caller,
            uid=segment["uid"],
            params=params,
            queue=queue,
            settings=settings,
        )
    uid = receipt["sheep_event"].split("/")[-2]

    env = {
        **os.environ,
        "FOLD_DATABASE_URL": database.url,
        "FOLD_DATA_DIR": str(tmp_path),
        "FOLD_JOB_LEASE_SECONDS": str(LEASE),
    }
    env.pop("FOLD_REDIS_URL", None)
    if queue_kind == "redis":
        env["FOLD_REDIS_URL"] = REDIS_URL
    log = tmp_path / "workers.log"
    first = worker(env, log)
    try:
        wait_for(
            lambda: job_row(database, bucket, uid).processed >= 4000,
            120,
            "the first worker to make progress",
            progress=lambda: job_row(database, bucket, uid).processed,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    at_kill = job_row(database, bucket, uid)
    assert at_kill.status == "running" and at_kill.processed < PEOPLE, (
        at_kill.status,
        at_kill.processed,
        at_kill.total,
        log.read_text()[-3000:],
    )

    time.sleep(LEASE + 0.5)
    second = worker(env, log)
    try:
        wait_for(
            lambda: job_row(database, bucket, uid).status == "completed",
            120,  # without progress: this checks what is done, not how fast
            "a new worker to finish the job",
            lambda: f"{job_row(database, bucket, uid).__dict__}\n{log.read_text()[-3000:]}",
            progress=lambda: job_row(database, bucket, uid).processed,
        )
    finally:
        second.terminate()
        second.wait(20)
    done = job_row(database, bucket, uid)
    assert (done.total, done.processed, done.succeeded, done.failed) == (
        PEOPLE,
        PEOPLE,
        PEOPLE,
        0,
    ), log.read_text()[-2000:]
    with unit_of_work(database.sessions) as session:
        tags = session.scalars(select(Record.data).where(Record.bucket == bucket)).all()
        assert all(data["tags"].count("resumed") == 1 for data in tags)
        audited = session.execute(
            select(func.count(), func.count(func.distinct(AuditEntry.record_uid))).where(
                AuditEntry.bucket == bucket, AuditEntry.message == "Resume test"
            )
        ).one()
    assert tuple(audited) == (PEOPLE, PEOPLE)
