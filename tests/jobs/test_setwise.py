"""The set-based batches (fold.jobs.setwise) against the per-record actions: on the same
awkward documents, every job and its undo leave the same records, outcomes, errors, audit
entries and undo notes, on each database."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from fold.auth.policies import Caller
from fold.buckets.service import ensure_bucket
from fold.db.engine import unit_of_work
from fold.db.models import AuditEntry, Job, JobItem, Record
from fold.fields.builtin import BUILTIN
from fold.ids import make_uri, new_uid
from fold.jobs import runner, setwise
from fold.jobs import service as jobs
from fold.records.bulk import insert_clean
from fold.segments import service as segments
from tests.conftest import Database, settings_for

# Awkward documents: tags absent, null, not a list, holding the tag once or twice, in
# another case, beside numbers and objects, in other scripts; `note` of every JSON type.
DOCUMENTS: list[dict[str, Any]] = [
    {},
    {"tags": None},
    {"tags": "t"},
    {"tags": []},
    {"tags": ["seed"]},
    {"tags": ["t"]},
    {"tags": ["T"]},
    {"tags": ["t", "t"]},
    {"tags": ["seed", "t", "x"]},
    {"tags": [1, "1", True, None]},
    {"tags": [{"t": 1}, ["t"]]},
    {"tags": ["é", "e\u0301", "日本"]},
    {"tags": {"t": True}},
    {"note": None},
    {"note": "x"},
    {"note": "X"},
    {"note": 5},
    {"note": 5.0},
    {"note": True},
    {"note": ["x"]},
    {"note": {}},
    {"note": {"a": {"b": 1}}},
    {"note": "é", "tags": ["x"]},
    {"note": "", "tags": [""]},
]
DELETED = 5  # deleted after the freeze: skipped, and its undo fails

STEPS: list[dict[str, Any]] = [
    {"action": "add_tag", "value": "t"},
    {"action": "remove_tag", "value": "t"},
    {"action": "add_tag", "value": "é"},
    {"action": "set-single-field", "field": "note", "value": "x"},
    {"action": "set-single-field", "field": "note", "value": ""},
    {"action": "set-single-field", "field": "note", "value": 5},
    {"action": "set-single-field", "field": "note", "value": "日本"},
]


def make_bucket(db: Database) -> tuple[str, list[str], str]:
    uids = [new_uid() for _ in DOCUMENTS]
    return seeded(db, "sw", uids, DOCUMENTS)


def seeded(
    db: Database, prefix: str, uids: list[str], documents: list[dict[str, Any]]
) -> tuple[str, list[str], str]:
    """A new bucket holding one person per uid (first name P<n> and its document), and
    a segment of all of them: (bucket, uids, segment uid)."""
    bucket = f"{prefix}-{secrets.token_hex(4)}"
    with unit_of_work(db.sessions) as session:
        ensure_bucket(session, bucket)
    rows = [
        ("person", uid, {"first_name": f"P{n}", **doc}, datetime(2026, 1, 1))
        for n, (uid, doc) in enumerate(zip(uids, documents, strict=True))
    ]
    caller = Caller(bucket=bucket, policy="admin", user_uri="/test/user/")
    with unit_of_work(db.sessions) as session:
        insert_clean(session, bucket=bucket, user_uri="/test/", message="seed", rows=rows,
                     schemas={"person": BUILTIN["person"]})  # fmt: skip
        segment, _ = segments.create(
            session, caller=caller, params={"name": "All", "resource_type": "person"}
        )
    return bucket, uids, segment["uid"]


class NoQueue:
    def send_after_commit(self, *args: Any) -> None:
        return None


def run(db: Database, bucket: str, uids: list[str], job_uid: str, delete: bool) -> None:
    settings = settings_for(db)
    runner.begin_job(db.sessions, settings, bucket, job_uid)
    if delete:  # after the freeze, as a person deleting a record while the job runs
        with unit_of_work(db.sessions) as session:
            session.execute(
                update(Record)
                .where(Record.bucket == bucket, Record.uid == uids[DELETED])
                .values(record_state="deleted")
            )
    assert runner.run_job(db.sessions, settings, bucket, job_uid) == "completed"


def what_happened(db: Database, bucket: str, uids: list[str], job_uid: str) -> dict[str, Any]:
    """Everything the job left, by record number rather than uid."""
    number = {uid: n for n, uid in enumerate(uids)}
    with unit_of_work(db.sessions) as session:
        job = session.get(Job, (bucket, job_uid))
        assert job is not None
        rows = session.execute(
            select(Record.uid, Record.data, Record.record_state, Record.version,
                   Record.display_value, Record.search_text)
            .where(Record.bucket == bucket)
        ).all()  # fmt: skip
        items = session.execute(
            select(JobItem.record_uid, JobItem.state, JobItem.undo).where(
                JobItem.bucket == bucket, JobItem.job_uid == job_uid
            )
        ).all()
        entries = session.execute(
            select(AuditEntry.record_uid, AuditEntry.diff, AuditEntry.user_uri).where(
                AuditEntry.bucket == bucket, AuditEntry.message == job.description
            )
        ).all()
        uri = {make_uri(bucket, "person", uid): n for uid, n in number.items()}
        return {
            "counts": [job.status, job.total, job.processed, job.succeeded, job.failed],
            "skipped": job.skipped,
            "errors": sorted((uri.get(e["uri"], -1), e["reason"]) for e in job.errors),
            "records": {
                number[r.uid]: (r.data, r.record_state, r.display_value, r.search_text)
                for r in rows
            },
            "versions": {number[r.uid]: r.version for r in rows},
            "items": sorted((number[i.record_uid], i.state, i.undo) for i in items),
            "audit": sorted((number[e.record_uid], e.diff, e.user_uri) for e in entries),
        }


def start(db: Database, bucket: str, segment: str, step: dict[str, Any]) -> str:
    caller = Caller(bucket=bucket, policy="admin", user_uri="/test/user/")
    with unit_of_work(db.sessions) as session:
        receipt = jobs.start_action(
            session, caller=caller, uid=segment,
            params={**step, "description": f"step {step}", "batch_size": 4},
            queue=NoQueue(), settings=settings_for(db),  # type: ignore[arg-type]
        )  # fmt: skip
    return str(receipt["sheep_event"].split("/")[-2])


def undo(db: Database, bucket: str, job_uid: str) -> str:
    caller = Caller(bucket=bucket, policy="admin", user_uri="/test/user/")
    with unit_of_work(db.sessions) as session:
        receipt = jobs.undo(session, caller=caller, uid=job_uid, queue=NoQueue())  # type: ignore[arg-type]
    return str(receipt["uid"])


def compare(
    db: Database, fast: tuple[str, list[str]], slow: tuple[str, list[str]], jobs_: list[str]
) -> None:
    before = [what_happened(db, *side, uid) for side, uid in zip((fast, slow), jobs_, strict=True)]
    assert before[0]["counts"] == before[1]["counts"]
    assert before[0]["skipped"] == before[1]["skipped"]
    assert before[0]["errors"] == before[1]["errors"]
    assert before[0]["records"] == before[1]["records"]
    assert before[0]["items"] == before[1]["items"]
    assert before[0]["audit"] == before[1]["audit"]


def written(a: dict[str, int], b: dict[str, int]) -> set[int]:
    return {n for n in a if b[n] != a[n]}


@pytest.mark.parametrize("step", STEPS, ids=[f"{s['action']}={s['value']!r}" for s in STEPS])
def test_set_based_batches_do_what_the_per_record_action_does(
    database: Database, step: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow = make_bucket(database), make_bucket(database)
    per_record = setwise.plan_for
    by_set: list[int] = []
    for name in ("run_batch", "run_chunk"):  # pending items; a compact freeze's chunks
        original = getattr(setwise, name)
        monkeypatch.setattr(
            runner.setwise,
            name,
            lambda *a, _f=original, **kw: by_set.append(_f(*a, **kw)) or by_set[-1],
        )
    sides: list[list[str]] = [[], []]
    versions: list[list[dict[int, int]]] = [[], []]
    for k, (bucket, uids, segment) in enumerate((fast, slow)):
        if k == 1:  # the per-record path, as before the set-based one
            monkeypatch.setattr(runner.setwise, "plan_for", lambda *a, **kw: None)
        state = what_happened_records(database, bucket, uids)
        versions[k].append(state)
        job_uid = start(database, bucket, segment, step)
        run(database, bucket, uids, job_uid, delete=True)
        versions[k].append(what_happened_records(database, bucket, uids))
        undo_uid = undo(database, bucket, job_uid)
        run(database, bucket, uids, undo_uid, delete=False)
        versions[k].append(what_happened_records(database, bucket, uids))
        sides[k] = [job_uid, undo_uid]
        monkeypatch.setattr(runner.setwise, "plan_for", per_record)
    # The set-based path did most of the work, and left some to the per-record one.
    assert sum(by_set) > len(DOCUMENTS) // 2, by_set
    assert written(versions[0][0], versions[0][1]) and written(versions[0][1], versions[0][2])
    for n in range(2):
        compare(database, fast[:2], slow[:2], [sides[0][n], sides[1][n]])
        assert written(versions[0][n], versions[0][n + 1]) == written(
            versions[1][n], versions[1][n + 1]
        )


def what_happened_records(db: Database, bucket: str, uids: list[str]) -> dict[int, int]:
    number = {uid: n for n, uid in enumerate(uids)}
    with unit_of_work(db.sessions) as session:
        rows = session.execute(
            select(Record.uid, Record.version).where(Record.bucket == bucket)
        ).all()
    return {number[uid]: version for uid, version in rows}
