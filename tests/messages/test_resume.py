"""A `fold worker` killed with SIGKILL in the middle of a 5,000-email job: the next worker
finishes it and no contact gets a second email (counted at the SMTP server)."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from fold.auth.policies import Caller
from fold.buckets.service import ensure_bucket
from fold.config import Settings
from fold.db.engine import unit_of_work
from fold.db.models import Record
from fold.ids import new_uid
from fold.jobs import service as jobs
from fold.jobs.messaging import IN_FLIGHT
from fold.jobs.queue import Queue
from fold.messages import templates
from fold.segments import service as segments
from fold.settings import service as bucket_settings
from tests.conftest import Database
from tests.jobs.test_resume import DATABASE_FOR, REDIS_URL, job_row, redis_up, wait_for, worker
from tests.messages.conftest import SECRET, Mailbox, fill_contacts

CONTACTS = 5000
LEASE = 2


@pytest.mark.parametrize("queue_kind", ["sqlite", "redis"])
def test_killed_worker_sends_no_email_twice(
    database: Database, queue_kind: str, tmp_path: Path, smtp_server: Mailbox
) -> None:
    if database.name != DATABASE_FOR[queue_kind]:
        pytest.skip(f"the {queue_kind} queue is tested with {DATABASE_FOR[queue_kind]}")
    if queue_kind == "redis" and not redis_up():
        pytest.skip("Redis is not reachable")
    bucket = f"mail-{queue_kind}-{new_uid()[-6:]}"
    with unit_of_work(database.sessions) as session:
        ensure_bucket(session, bucket)
    fill_contacts(
        database,
        bucket,
        [{"first_name": f"P{i}", "email": f"p{i}@example.org"} for i in range(CONTACTS)],
    )
    settings = Settings(
        database_url=database.url,
        redis_url=REDIS_URL if queue_kind == "redis" else None,
        data_dir=str(tmp_path),
        job_lease_seconds=LEASE,
        secret_key=SECRET,
    )
    queue = Queue(settings, database.engine)
    queue.huey.flush()
    caller = Caller(bucket=bucket, policy="admin", user_uri="/test/user/")
    with unit_of_work(database.sessions) as session:
        bucket_settings.put(
            session,
            settings,
            caller=caller,
            section="smtp",
            params={
                "host": "127.0.0.1",
                "port": smtp_server.port,
                "security": "none",
                "from_address": "office@club.example",
            },
        )
        template = templates.create(
            session,
            caller=caller,
            params={"name": "T", "channel": "email", "subject": "Hi", "text_body": "Hello"},
        )
        segment, _ = segments.create(
            session, caller=caller, params={"name": "All", "resource_type": "person"}
        )
        receipt = jobs.start_action(
            session,
            caller=caller,
            uid=segment["uid"],
            params={
                "action": "send-templated-email",
                "value": template["uid"],
                "description": "Kill test",
            },
            queue=queue,
            settings=settings,
        )
    uid = receipt["sheep_event"].split("/")[-2]
    env = {
        **os.environ,
        "FOLD_DATABASE_URL": database.url,
        "FOLD_DATA_DIR": str(tmp_path),
        "FOLD_JOB_LEASE_SECONDS": str(LEASE),
        "FOLD_SECRET_KEY": SECRET,
    }
    env.pop("FOLD_REDIS_URL", None)
    if queue_kind == "redis":
        env["FOLD_REDIS_URL"] = REDIS_URL
    log = tmp_path / "workers.log"
    first = worker(env, log)
    try:
        wait_for(
            lambda: len(smtp_server.recipients()) >= 1200,
            180,
            "the first worker to send",
            lambda: log.read_text()[-3000:],
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    at_kill = len(smtp_server.recipients())
    assert at_kill < CONTACTS and job_row(database, bucket, uid).status == "running"

    time.sleep(LEASE + 0.5)
    second = worker(env, log)
    try:
        wait_for(
            lambda: job_row(database, bucket, uid).status == "completed",
            300,
            "a new worker to finish the job",
            lambda: f"{job_row(database, bucket, uid).__dict__}\n{log.read_text()[-3000:]}",
        )
    finally:
        second.terminate()
        second.wait(20)

    received = Counter(smtp_server.recipients())
    assert max(received.values()) == 1, received.most_common(3)
    with unit_of_work(database.sessions) as session:
        messages = session.scalars(
            select(Record.data).where(Record.bucket == bucket, Record.resource_type == "message")
        ).all()
    by_status: dict[str, set[str]] = {}
    for data in messages:
        by_status.setdefault(data["status"], set()).add(data["to"])
    assert len(messages) == CONTACTS
    assert set(by_status) <= {"sent", "unknown"}, by_status.keys()
    sent, unknown = by_status.get("sent", set()), by_status.get("unknown", set())
    # Every email marked sent was received; the rest were in flight when the worker died.
    assert sent <= set(received)
    assert set(received) <= sent | unknown
    assert len(unknown) <= IN_FLIGHT
    done = job_row(database, bucket, uid)
    assert (done.total, done.processed, done.succeeded, done.failed) == (
        CONTACTS,
        CONTACTS,
        len(sent),
        len(unknown),
    )
