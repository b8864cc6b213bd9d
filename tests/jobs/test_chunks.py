"""A set-based job's compact freeze (fold.jobs.runner._chunked): one row per chunk of
records, each batch doing a chunk. The totals are exact, a batch cut short leaves its
chunk whole, a cancel stops between chunks, a chunk the set-based path cannot do goes
record by record, and undo reverts exactly what was done."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select, update

from fold.auth.policies import Caller
from fold.db.engine import unit_of_work
from fold.db.models import AuditEntry, Job, JobItem, Record
from fold.ids import new_uid
from fold.jobs import runner, setwise
from fold.jobs import service as jobs
from fold.segments.index_or_sql import selected_keys
from tests.conftest import Database, settings_for
from tests.jobs.test_setwise import seeded, undo

PEOPLE = 60
BATCH = 2  # a chunk of 2 * CHUNK_FACTOR = 50 records: two chunks, the second of 10


class NoQueue:
    def send_after_commit(self, *args: Any) -> None:
        return None


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it in the batch runs, nothing of it commits."""


def make_people(db: Database) -> tuple[str, list[str], str]:
    uids = sorted(new_uid() for _ in range(PEOPLE))
    return seeded(db, "chunks", uids, [{"tags": ["seed"]}] * PEOPLE)


def tagged_once_then_undone(db: Database, bucket: str, uids: list[str], uid: str) -> None:
    """The job did every record once (one done item, one tag, one audit entry each), and
    its undo takes the tag off again."""
    done = job_row(db, bucket, uid)
    assert (done.total, done.processed, done.succeeded) == (PEOPLE,) * 3
    assert items(db, bucket, uid) == [(n, "done", u) for n, u in enumerate(uids)]
    assert tags(db, bucket, uids) == [["seed", "t"]] * PEOPLE
    assert audited(db, bucket) == dict.fromkeys(uids, 1)
    assert run(db, bucket, undo(db, bucket, uid)) == "completed"
    assert tags(db, bucket, uids) == [["seed"]] * PEOPLE


def start(db: Database, bucket: str, segment: str, **params: Any) -> str:
    caller = Caller(bucket=bucket, policy="admin", user_uri="/test/user/")
    with unit_of_work(db.sessions) as session:
        receipt = jobs.start_action(
            session, caller=caller, uid=segment,
            params={"description": "chunks", "batch_size": BATCH, **params},
            queue=NoQueue(), settings=settings_for(db),  # type: ignore[arg-type]
        )  # fmt: skip
    return str(receipt["sheep_event"].split("/")[-2])


def job_row(db: Database, bucket: str, uid: str) -> Job:
    with unit_of_work(db.sessions) as session:
        found = session.get(Job, (bucket, uid))
        assert found is not None
        return found


def items(db: Database, bucket: str, uid: str) -> list[tuple[int, str, str]]:
    with unit_of_work(db.sessions) as session:
        rows = session.execute(
            select(JobItem.seq, JobItem.state, JobItem.record_uid)
            .where(JobItem.bucket == bucket, JobItem.job_uid == uid)
            .order_by(JobItem.seq)
        ).all()
    return [(r.seq, r.state, r.record_uid) for r in rows]


def tags(db: Database, bucket: str, uids: list[str]) -> list[list[Any]]:
    with unit_of_work(db.sessions) as session:
        found = dict(
            session.execute(select(Record.uid, Record.data).where(Record.bucket == bucket)).all()
        )
    return [found[u].get("tags") for u in uids]


def audited(db: Database, bucket: str) -> dict[str, int]:
    with unit_of_work(db.sessions) as session:
        rows = session.execute(
            select(AuditEntry.record_uid, func.count())
            .where(AuditEntry.bucket == bucket, AuditEntry.message == "chunks")
            .group_by(AuditEntry.record_uid)
        ).all()
    return {uid: n for uid, n in rows}


def freeze(db: Database, bucket: str, uid: str) -> None:
    assert runner.begin_job(db.sessions, settings_for(db), bucket, uid) is False


def run(db: Database, bucket: str, uid: str) -> str:
    return runner.run_job(db.sessions, settings_for(db), bucket, uid)


@pytest.mark.parametrize("source", ["sql", "index"])
def test_the_freeze_is_one_row_per_chunk_and_the_total_exact(
    database: Database, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, uids, segment = make_people(database)
    if source == "index":  # the column index's answer: keys in uid order
        monkeypatch.setattr(runner, "selected", lambda session, **kw: selected_keys(session, **kw))
    uid = start(database, bucket, segment, action="add_tag", value="t")
    freeze(database, bucket, uid)
    size = setwise.chunk_size(BATCH)
    assert job_row(database, bucket, uid).total == PEOPLE
    assert items(database, bucket, uid) == [(-2, "frozen", uids[size]), (-1, "frozen", uids[0])]

    assert run(database, bucket, uid) == "completed"
    done = job_row(database, bucket, uid)
    assert (done.total, done.processed, done.succeeded, done.failed) == (PEOPLE,) * 3 + (0,)
    # Every record an item, numbered in uid order as the per-record freeze numbers them.
    assert items(database, bucket, uid) == [(n, "done", u) for n, u in enumerate(uids)]
    assert tags(database, bucket, uids) == [["seed", "t"]] * PEOPLE
    assert audited(database, bucket) == dict.fromkeys(uids, 1)


def test_a_batch_cut_short_leaves_its_chunk_whole(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, uids, segment = make_people(database)
    uid = start(database, bucket, segment, action="add_tag", value="t")
    freeze(database, bucket, uid)
    original = setwise.run_chunk
    calls: list[int] = []

    def killed_in_the_second(*args: Any, **kwargs: Any) -> int:
        done = original(*args, **kwargs)  # written, but not committed
        calls.append(done)
        if len(calls) == 2:
            raise Killed
        return done

    monkeypatch.setattr(runner.setwise, "run_chunk", killed_in_the_second)
    with pytest.raises(Killed):
        run(database, bucket, uid)
    size = setwise.chunk_size(BATCH)
    at_kill = job_row(database, bucket, uid)
    assert (at_kill.status, at_kill.processed) == ("running", size)
    assert items(database, bucket, uid)[0] == (-2, "frozen", uids[size])
    assert tags(database, bucket, uids) == [["seed", "t"]] * size + [["seed"]] * (PEOPLE - size)

    assert run(database, bucket, uid) == "completed"  # resumed at the chunk it lost
    tagged_once_then_undone(database, bucket, uids, uid)


def test_cancel_stops_between_chunks_and_undo_reverts_what_was_done(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, uids, segment = make_people(database)
    uid = start(database, bucket, segment, action="set-single-field", field="note", value="x")
    original: Callable[..., str] = runner._batch

    def batch_then_cancel(*args: Any) -> str:
        status = original(*args)
        if status != "running":
            return status
        with unit_of_work(database.sessions) as session:
            session.execute(
                update(Job).where(Job.bucket == bucket, Job.uid == uid).values(status="cancelling")
            )
        return status

    monkeypatch.setattr(runner, "_batch", batch_then_cancel)
    assert run(database, bucket, uid) == "cancelled"
    size = setwise.chunk_size(BATCH)
    cancelled = job_row(database, bucket, uid)
    assert (cancelled.total, cancelled.processed, cancelled.succeeded) == (PEOPLE, size, size)
    monkeypatch.setattr(runner, "_batch", original)

    with unit_of_work(database.sessions) as session:
        notes = dict(session.execute(select(Record.uid, Record.data["note"])).all())
    assert [notes[u] for u in uids] == ["x"] * size + [None] * (PEOPLE - size)
    undo_uid = undo(database, bucket, uid)
    assert run(database, bucket, undo_uid) == "completed"
    assert job_row(database, bucket, undo_uid).total == size
    with unit_of_work(database.sessions) as session:
        rows = session.execute(select(Record.data).where(Record.bucket == bucket)).scalars()
        assert all("note" not in data for data in rows)


def test_chunks_the_set_based_path_cannot_do_go_record_by_record(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frozen compactly, then run without a set-based plan (as when the field's schema
    changes mid-job): each chunk becomes pending items for the per-record action, and the
    outcome is the same."""
    bucket, uids, segment = make_people(database)
    uid = start(database, bucket, segment, action="add_tag", value="t")
    freeze(database, bucket, uid)
    monkeypatch.setattr(runner.setwise, "plan_for", lambda *a, **kw: None)
    assert run(database, bucket, uid) == "completed"
    tagged_once_then_undone(database, bucket, uids, uid)
