"""A `fold worker` killed with SIGKILL half-way through a 12,000-contact sync: the next
worker finishes it, and Mailchimp (the stand-in) ends in the state an unbroken run gives."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from fold.auth.policies import Caller
from fold.bench.mailchimp_standin import StandIn
from fold.buckets.service import ensure_bucket
from fold.config import Settings
from fold.db.engine import unit_of_work
from fold.db.models import Record
from fold.ids import new_uid
from fold.jobs.queue import Queue
from fold.mailchimp import service as mailchimp
from fold.segments import service as segments
from fold.settings import service as bucket_settings
from tests.conftest import Database
from tests.jobs.test_resume import DATABASE_FOR, REDIS_URL, job_row, redis_up, wait_for, worker
from tests.mailchimp.conftest import AUDIENCE, KEY, SECRET
from tests.mailchimp.test_sync import fate, person
from tests.messages.conftest import fill_contacts

CONTACTS = 12_000
LEASE = 2


@pytest.mark.parametrize("queue_kind", ["sqlite", "redis"])
def test_killed_sync_ends_in_the_same_state(
    database: Database, queue_kind: str, tmp_path: Path, standin: StandIn
) -> None:
    if database.name != DATABASE_FOR[queue_kind]:
        pytest.skip(f"the {queue_kind} queue is tested with {DATABASE_FOR[queue_kind]}")
    if queue_kind == "redis" and not redis_up():
        pytest.skip("Redis is not reachable")
    bucket = f"mcsync-{queue_kind}-{new_uid()[-6:]}"
    with unit_of_work(database.sessions) as session:
        ensure_bucket(session, bucket)
    fill_contacts(database, bucket, [person(i) for i in range(CONTACTS)])
    state = standin.state
    state.add_member(AUDIENCE, "old@example.org")
    state.add_segment(AUDIENCE, "Everyone", ["old@example.org"])
    settings = Settings(
        database_url=database.url,
        redis_url=REDIS_URL if queue_kind == "redis" else None,
        data_dir=str(tmp_path),
        job_lease_seconds=LEASE,
        secret_key=SECRET,
        allow_private_webhooks=True,
    )
    queue = Queue(settings, database.engine)
    queue.huey.flush()
    caller = Caller(bucket=bucket, policy="admin", user_uri="/test/user/")
    with unit_of_work(database.sessions) as session:
        bucket_settings.put(
            session,
            settings,
            caller=caller,
            section="mailchimp",
            params={"api_key": KEY, "audience_id": AUDIENCE, "base_url": standin.base_url},
        )
        segment, _ = segments.create(
            session, caller=caller, params={"name": "Everyone", "resource_type": "person"}
        )
        receipt = mailchimp.start_sync(
            session, caller=caller, uid=segment["uid"], params={}, queue=queue, settings=settings
        )
    uid = receipt["journal_uri"].split("/")[-2]
    env = {
        **os.environ,
        "FOLD_DATABASE_URL": database.url,
        "FOLD_DATA_DIR": str(tmp_path),
        "FOLD_JOB_LEASE_SECONDS": str(LEASE),
        "FOLD_SECRET_KEY": SECRET,
        "FOLD_ALLOW_PRIVATE_WEBHOOKS": "1",
    }
    env.pop("FOLD_REDIS_URL", None)
    if queue_kind == "redis":
        env["FOLD_REDIS_URL"] = REDIS_URL
    log = tmp_path / "workers.log"
    first = worker(env, log)
    try:
        wait_for(
            lambda: len(state.seen) >= CONTACTS // 3,
            240,
            "the first worker to upsert",
            lambda: log.read_text()[-3000:],
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert len(state.seen) < CONTACTS * 0.9
    assert job_row(database, bucket, uid).status == "running"

    time.sleep(LEASE + 0.5)
    second = worker(env, log)
    try:
        wait_for(
            lambda: job_row(database, bucket, uid).status == "completed",
            300,
            "a new worker to finish the sync",
            lambda: f"{job_row(database, bucket, uid).__dict__}\n{log.read_text()[-3000:]}",
        )
    finally:
        second.terminate()
        second.wait(20)

    synced = {f"p{i}@example.org" for i in range(CONTACTS) if fate(i) == "done"}
    assert state.segment_emails(AUDIENCE, "Everyone") == synced
    members = {m["email_address"].lower() for m in state.audience(AUDIENCE).members.values()}
    assert members == synced | {"old@example.org"}
    assert state.member(AUDIENCE, "old@example.org")["status"] == "subscribed"  # type: ignore[index]
    done = job_row(database, bucket, uid)
    assert (done.total, done.processed, done.succeeded) == (CONTACTS, CONTACTS, len(synced))
    assert done.params["mailchimp_removed"] == 1
    with unit_of_work(database.sessions) as session:
        rows = session.scalars(
            select(Record.data).where(Record.bucket == bucket, Record.resource_type == "person")
        ).all()
    stamped = {str(d["email"]).lower() for d in rows if d.get("mailchimp_last_sync")}
    assert stamped == synced
