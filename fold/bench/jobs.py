"""Job throughput: records per second for bulk actions on a bucket of N people, end to
end (the freeze, every batch), and the freeze alone."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fold.auth.policies import Caller
from fold.buckets.service import ensure_bucket
from fold.config import Settings
from fold.db.bulk import analyze
from fold.db.engine import unit_of_work
from fold.db.models import Job, Record
from fold.fields.builtin import BUILTIN
from fold.ids import new_uid, uid_of
from fold.jobs import service as jobs
from fold.jobs.runner import begin_job, run_job
from fold.records.bulk import insert_clean
from fold.segments import service as segments

ACTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("add_tag", {"value": "bench"}),
    ("set-single-field", {"field": "source", "value": "bench"}),
    ("remove_tag", {"value": "bench"}),
)


class NoQueue:
    """Jobs are run here, in this process, so the time is the job's alone."""

    def send_after_commit(self, session: Session, bucket: str, uid: str) -> None:
        return None


def ensure_people(
    factory: sessionmaker[Session], bucket: str, people: int, say: Callable[[str], None]
) -> None:
    with unit_of_work(factory) as session:
        ensure_bucket(session, bucket)
        have = (
            session.scalar(
                select(func.count()).where(
                    Record.bucket == bucket, Record.resource_type == "person"
                )
            )
            or 0
        )
    if have >= people:
        return
    say(f"adding {people - have:,} people to {bucket}")
    now = datetime(2026, 1, 1)
    for start in range(have, people, 10_000):
        rows = [
            (
                "person",
                new_uid(),
                {"first_name": f"Bench{i}", "last_name": "Person", "tags": ["seed"]},
                now,
            )
            for i in range(start, min(people, start + 10_000))
        ]
        with unit_of_work(factory) as session:
            insert_clean(
                session,
                bucket=bucket,
                user_uri="/system/user/bench/",
                message="bench data",
                rows=rows,
                schemas={"person": BUILTIN["person"]},
            )
    with unit_of_work(factory) as session:
        analyze(session, "records", "audit_entries")


def run(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    people: int,
    batch_size: int,
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    bucket = f"bench-jobs-{people}"
    ensure_people(factory, bucket, people, say)
    caller = Caller(bucket=bucket, policy="admin", user_uri="/system/user/bench/")
    with unit_of_work(factory) as session:
        segment, _ = segments.create(
            session, caller=caller, params={"name": f"Bench {new_uid()}", "resource_type": "person"}
        )
    results = []
    for action, params in ACTIONS:
        with unit_of_work(factory) as session:
            request = {"action": action, "description": f"bench {action}", **params}
            receipt = jobs.start_action(
                session,
                caller=caller,
                uid=segment["uid"],
                params={**request, "batch_size": batch_size},
                queue=NoQueue(),  # type: ignore[arg-type]
                settings=settings,
            )
        uid = uid_of(receipt["sheep_event"])
        started = time.perf_counter()
        begin_job(factory, settings, bucket, uid)
        frozen = time.perf_counter() - started
        status = run_job(factory, settings, bucket, uid)
        seconds = time.perf_counter() - started
        with unit_of_work(factory) as session:
            job = session.get(Job, (bucket, uid))
            assert job is not None
            done = job.succeeded
        results.append(
            {
                "action": action,
                "status": status,
                "records": done,
                "seconds": round(seconds, 2),
                "freeze_seconds": round(frozen, 2),
                "records_per_second": round(done / seconds),
            }
        )
        rate = done / seconds
        say(
            f"{action:>18}: {done:,} records in {seconds:.1f} s = {rate:,.0f} records/s "
            f"(freeze {frozen:.2f} s, {status})"
        )
    return results
