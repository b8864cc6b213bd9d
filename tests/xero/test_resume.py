"""A `fold worker` killed with SIGKILL half-way through an invoice job: the next worker
finishes it, and Xero (the stand-in) holds exactly one invoice per contact — the batch
done again sends the same Idempotency-Keys, and records already given their invoice are
not sent at all."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fold.auth.policies import Caller
from fold.bench.xero_standin import StandIn
from fold.buckets.service import ensure_bucket
from fold.config import Settings
from fold.db.engine import unit_of_work
from fold.db.models import AuditEntry, Record
from fold.ids import new_uid
from fold.jobs import service as jobs
from fold.jobs.queue import Queue
from fold.segments import service as segments
from fold.settings import service as bucket_settings
from fold.xero import templates
from tests.conftest import Database
from tests.jobs.test_resume import DATABASE_FOR, REDIS_URL, job_row, redis_up, wait_for, worker
from tests.messages.conftest import fill_contacts
from tests.xero.conftest import CLIENT_ID, CLIENT_SECRET, LINES, SECRET, TENANT

CONTACTS = 300
LEASE = 2


@pytest.mark.parametrize("queue_kind", ["sqlite", "redis"])
def test_killed_invoice_job_raises_each_invoice_once(
    database: Database, queue_kind: str, tmp_path: Path
) -> None:
    if database.name != DATABASE_FOR[queue_kind]:
        pytest.skip(f"the {queue_kind} queue is tested with {DATABASE_FOR[queue_kind]}")
    if queue_kind == "redis" and not redis_up():
        pytest.skip("Redis is not reachable")
    standin = StandIn(CLIENT_ID, CLIENT_SECRET, TENANT, per_minute=100_000, delay=0.03).start()
    state = standin.state
    try:
        bucket = f"xero-{queue_kind}-{new_uid()[-6:]}"
        with unit_of_work(database.sessions) as session:
            ensure_bucket(session, bucket)
        people = [
            {"first_name": f"P{i}", "last_name": "Kill", "email": f"p{i}@example.org"}
            for i in range(CONTACTS)
        ]
        fill_contacts(database, bucket, people)
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
                section="xero",
                params={
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "tenant_id": TENANT,
                    "default_tax_type": "OUTPUT2",
                    "identity_url": standin.identity_url,
                    "api_url": standin.api_url,
                },
            )
            template = templates.create(
                session, caller=caller, params={"name": "Dues", "line_items": LINES}
            )
            segment, _ = segments.create(
                session, caller=caller, params={"name": "All", "resource_type": "person"}
            )
            receipt = jobs.start_action(
                session,
                caller=caller,
                uid=segment["uid"],
                params={
                    "action": "raise-authorised-xero-invoice",
                    "value": template["uid"],
                    "description": "Resume invoices",
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
            "FOLD_ALLOW_PRIVATE_WEBHOOKS": "1",
            "FOLD_XERO_CALLS_PER_MINUTE": "100000",
            "FOLD_XERO_BACKOFF_MS": "10",
        }
        env.pop("FOLD_REDIS_URL", None)
        if queue_kind == "redis":
            env["FOLD_REDIS_URL"] = REDIS_URL
        log = tmp_path / "workers.log"
        first = worker(env, log)
        try:
            wait_for(
                lambda: len(state.invoices) >= CONTACTS // 3,
                120,
                "the first worker to raise invoices",
                lambda: log.read_text()[-3000:],
                progress=lambda: state.requests,
            )
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        assert len(state.invoices) < CONTACTS
        assert job_row(database, bucket, uid).status == "running"

        time.sleep(LEASE + 0.5)
        second = worker(env, log)
        try:
            wait_for(
                lambda: job_row(database, bucket, uid).status == "completed",
                120,
                "a new worker to finish the job",
                lambda: f"{job_row(database, bucket, uid).__dict__}\n{log.read_text()[-3000:]}",
                progress=lambda: state.requests,
            )
        finally:
            second.terminate()
            second.wait(20)
        done = job_row(database, bucket, uid)
        assert (done.total, done.processed, done.succeeded, done.failed) == (
            CONTACTS,
            CONTACTS,
            CONTACTS,
            0,
        ), done.errors
        assert len(state.invoices) == CONTACTS
        assert len(state.contacts) == CONTACTS
        per_contact = {c: len(state.invoices_for(c)) for c in state.contacts}
        assert set(per_contact.values()) == {1}
        with unit_of_work(database.sessions) as session:
            kept = session.scalars(
                select(Record.data).where(Record.bucket == bucket, Record.resource_type == "person")
            ).all()
            audited = session.execute(
                select(func.count(), func.count(func.distinct(AuditEntry.record_uid))).where(
                    AuditEntry.bucket == bucket, AuditEntry.message == "Resume invoices"
                )
            ).one()
        assert {d["invoice"]["id"] for d in kept} == set(state.invoices)
        for data in kept:
            invoice = state.invoices[data["invoice"]["id"]]
            assert state.contacts[invoice["Contact"]["ContactID"]]["EmailAddress"] == data["email"]
        assert tuple(audited) == (CONTACTS, CONTACTS)
    finally:
        standin.stop()
