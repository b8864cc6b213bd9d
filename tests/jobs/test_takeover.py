"""A job whose worker was killed is taken over at once by a worker that can tell its holder
is gone (a process of this host that no longer runs), not a whole lease later."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from fold.auth.policies import Caller
from fold.db.engine import unit_of_work
from fold.db.models import Job
from fold.jobs import runner
from fold.jobs import service as jobs
from fold.jobs.queue import Queue
from fold.records import service as records
from fold.segments import service as segments
from fold.timefmt import utcnow
from tests.conftest import Tenant, settings_for


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_who_is_gone() -> None:
    host = socket.gethostname()
    me = runner.worker_id()
    assert not runner.holder_gone(me)
    assert runner.holder_gone(f"{host}:{os.getpid()}:0000earlier:1")  # restarted container
    assert runner.holder_gone(f"{host}:{dead_pid()}:abcd0123:1")
    assert not runner.holder_gone(f"{host}:1:abcd0123:1")  # alive, or not ours to judge
    assert not runner.holder_gone(f"elsewhere.example:{dead_pid()}:abcd0123:1")
    assert not runner.holder_gone(None)


def test_a_killed_workers_job_is_taken_over_at_once(tenant: Tenant, monkeypatch: Any) -> None:
    db = tenant.db
    settings = settings_for(db, job_lease_seconds=60)
    queue = Queue(settings, db.engine)
    caller = Caller(bucket=tenant.bucket, policy="admin", user_uri="/test/user/")
    with unit_of_work(db.sessions) as session:
        for i in range(3):
            records.create(
                session, caller=caller, resource_type="person", body={"first_name": f"P{i}"}
            )
        segment, _ = segments.create(
            session, caller=caller, params={"name": "All", "resource_type": "person"}
        )
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(queue, "send", lambda bucket, uid: sent.append((bucket, uid)))
    with unit_of_work(db.sessions) as session:
        receipt = jobs.start_action(
            session,
            caller=caller,
            uid=segment["uid"],
            params={"action": "add_tag", "value": "taken-over", "description": "Takeover"},
            queue=queue,
            settings=settings,
        )
    uid = receipt["sheep_event"].split("/")[-2]
    killed = f"{socket.gethostname()}:{dead_pid()}:abcd0123:1"
    with unit_of_work(db.sessions) as session:
        session.execute(
            update(Job)
            .where(Job.bucket == tenant.bucket, Job.uid == uid)
            .values(worker=killed, lease_until=utcnow() + timedelta(seconds=60))
        )
    started = time.monotonic()
    queue.recover()  # what a worker does when it starts
    assert (tenant.bucket, uid) in sent  # sent again although its lease has 60 s to run
    assert time.monotonic() - started < 5
    assert runner.run_job(db.sessions, settings, tenant.bucket, uid) == "completed"
    with unit_of_work(db.sessions) as session:
        job = session.get(Job, (tenant.bucket, uid))
        assert job is not None
        assert (job.status, job.succeeded) == ("completed", 3), job.__dict__
