"""The change clock: a reader that reads "the value now", then the rows changed since the
value it had, never misses a committed write — whatever the writers' transactions do
meanwhile — and writers of one record do not wait on each other for it."""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from fold.columns.store import Store
from fold.db.models import Record
from fold.records import clock
from tests.conftest import Database


def bucket() -> str:
    return f"clock-{secrets.token_hex(4)}"


def person(session: Session, bucket: str, n: int) -> Record:
    now = datetime.now(UTC).replace(tzinfo=None)
    row = Record(
        bucket=bucket, resource_type="person", uid=f"{n:024x}", data={"n": n},
        created=now, last_updated=now, record_state="active",
        display_value=str(n), search_text=str(n), unique_key=None,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row


def store_uids(store: Store) -> set[str]:
    return set(store.uids)


@pytest.fixture
def postgres(database: Database) -> Database:
    if database.name != "postgresql":
        pytest.skip("PostgreSQL's clock: transaction ids and a watermark")
    return database


class TestReaderNeverMissesACommit:
    def test_a_write_open_while_the_reader_reads_is_in_its_next_read(
        self, database: Database
    ) -> None:
        """Writer opens and writes; the reader reads (and cannot see it); the writer
        commits; the reader's next refresh has it."""
        name = bucket()
        writer = database.sessions()
        with database.engine.connect() as reader:
            store = Store(name, "person")
            if database.name == "sqlite":
                # SQLite runs one writer at a time, and a reader beside it.
                store.load(reader)
                reader.commit()
            person(writer, name, 1)
            if database.name != "sqlite":
                store.load(reader)
                reader.commit()
                assert store_uids(store) == set()
            writer.commit()
            store.refresh(reader)
            reader.commit()
            assert store_uids(store) == {f"{1:024x}"}
        writer.close()

    def test_an_older_transaction_committing_after_a_newer_one(self, postgres: Database) -> None:
        """Transaction A takes its id first, B after; B commits and is read; A commits
        later: the watermark stood at A meanwhile, so A's row is still read."""
        name = bucket()
        a, b = postgres.sessions(), postgres.sessions()
        with postgres.engine.connect() as reader:
            store = Store(name, "person")
            store.load(reader)
            reader.commit()
            person(a, name, 1)
            person(b, name, 2)
            assert a.scalar(select(Record.version).where(Record.bucket == name)) < b.scalar(
                select(Record.version).where(Record.bucket == name)
            )
            b.commit()
            store.refresh(reader)
            reader.commit()
            assert store_uids(store) == {f"{2:024x}"}
            a.commit()
            store.refresh(reader)
            reader.commit()
            assert store_uids(store) == {f"{1:024x}", f"{2:024x}"}
        a.close()
        b.close()

    def test_a_commit_between_reading_the_clock_and_the_rows(self, postgres: Database) -> None:
        """The reader reads the clock; a writer commits; the reader reads the rows changed
        since (seeing the write or not); whatever it saw, the next read has it."""
        name = bucket()
        writer = postgres.sessions()
        with postgres.engine.connect() as reader:
            seen = clock.current(reader, name)
            person(writer, name, 1)
            now = clock.current(reader, name)
            writer.commit()
            since = clock.changed_since("postgresql", seen)
            reader.execute(select(Record.uid).where(Record.bucket == name, since)).all()
            reader.commit()
            later = select(Record.uid).where(
                Record.bucket == name, clock.changed_since("postgresql", now)
            )
            assert reader.scalars(later).all() == [f"{1:024x}"]
        writer.close()

    @pytest.mark.parametrize("seed", range(6))
    def test_random_interleavings(self, postgres: Database, seed: int) -> None:
        """Four writers opening, writing, committing and rolling back in a random order,
        a reader refreshing between their steps: after every refresh the reader holds
        exactly what had committed before it began."""
        name = bucket()
        rng = random.Random(seed)
        writers: list[Session | None] = [None] * 4
        pending: list[list[str]] = [[] for _ in writers]
        committed: set[str] = set()
        made = 0
        with postgres.engine.connect() as reader:
            store = Store(name, "person")
            store.load(reader)
            reader.commit()
            for _ in range(60):
                i = rng.randrange(len(writers))
                session = writers[i]
                if session is None:  # a writer of one record: opens and writes it
                    session = writers[i] = postgres.sessions()
                    made += 1
                    pending[i].append(person(session, name, made).uid)
                else:
                    if rng.random() < 0.8:
                        session.commit()
                        committed.update(pending[i])
                    else:
                        session.rollback()
                    session.close()
                    writers[i], pending[i] = None, []
                if rng.random() < 0.5:
                    store.refresh(reader)
                    reader.commit()
                    assert store_uids(store) == committed
            for session in writers:
                if session is not None:
                    session.rollback()
                    session.close()
            store.refresh(reader)
            reader.commit()
            assert store_uids(store) == committed


class TestWriters:
    def test_writers_of_one_record_do_not_wait_on_each_other(self, postgres: Database) -> None:
        name = bucket()
        a, b = postgres.sessions(), postgres.sessions()
        try:
            b.execute(text("SET LOCAL lock_timeout = '2s'"))
            person(a, name, 1)
            person(b, name, 2)  # would time out if A held the clock
            a.commit()
            b.commit()
        finally:
            a.close()
            b.close()

    def test_a_writer_of_many_waits_for_writers_of_one(self, postgres: Database) -> None:
        name = bucket()
        a, b = postgres.sessions(), postgres.sessions()
        try:
            person(a, name, 1)
            b.execute(text("SET LOCAL lock_timeout = '50ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                clock.stamp(b, name)
        finally:
            a.rollback()
            b.rollback()
            a.close()
            b.close()

    def test_a_second_record_makes_a_writer_of_many(self, postgres: Database) -> None:
        name = bucket()
        a, b = postgres.sessions(), postgres.sessions()
        try:
            person(a, name, 1)
            person(a, name, 2)  # takes the bucket alone
            b.execute(text("SET LOCAL lock_timeout = '50ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                person(b, name, 3)
        finally:
            a.rollback()
            b.rollback()
            a.close()
            b.close()

    def test_one_transaction_stamps_one_value(self, database: Database) -> None:
        name = bucket()
        with database.sessions() as session:
            first = clock.stamp(session, name)
            assert clock.stamp(session, name) == first
            assert clock.stamp_one(session, name, "person", "x" * 24) == first
            session.rollback()
