"""The change clock: one counter per bucket, bumped once by each transaction that writes
the bucket's records, and stamped on every record row that transaction writes.

Bumping the counter locks its row until the transaction ends, so writers of one bucket
take clock values in the order they commit. A reader that sees the clock at V has seen
every transaction up to V commit, and "rows with version > what I had" is exactly what
changed since it last looked; the column index (fold.columns) relies on that.

Rule for writers: stamp before locking or writing any record of the bucket. The ORM flush
does it on sessions from a factory passed through `install` (every place that makes a
session factory does so), `records.repository.get(for_update=True)` does it, and the bulk
paths call `stamp` and put the value on each row themselves (`db.bulk.insert_rows` refuses
a record row without it). Taking the clock first keeps two writers from each holding what
the other waits for.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, event, select, text
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction, sessionmaker

from fold.db.models import Record, RecordClock

_MEMO = "fold_clock"  # bucket -> this transaction's clock value
_WROTE = "fold_clock_wrote"  # buckets this (outermost) transaction has written
INSTALLED = "fold_clock_installed"  # set on sessions whose flushes stamp record rows

_BUMP = text(
    "INSERT INTO record_clocks (bucket, version) VALUES (:bucket, 1) "
    "ON CONFLICT (bucket) DO UPDATE SET version = record_clocks.version + 1 "
    "RETURNING version"
)


def stamp(session: Session, bucket: str) -> int:
    """This transaction's clock value for `bucket`, bumping the clock the first time."""
    memo: dict[str, int] = session.info.setdefault(_MEMO, {})
    if bucket not in memo:
        memo[bucket] = int(session.execute(_BUMP, {"bucket": bucket}).scalar_one())
        session.info.setdefault(_WROTE, set()).add(bucket)
    return memo[bucket]


def wrote(session: Session, bucket: str) -> bool:
    """Whether this transaction has written (or is about to write) the bucket's records."""
    return bucket in session.info.get(_WROTE, ())


def current(connection: Connection, bucket: str) -> int:
    value = connection.scalar(select(RecordClock.version).where(RecordClock.bucket == bucket))
    return int(value or 0)


def install(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Have every session `factory` makes stamp the record rows it flushes. (A sessionmaker
    has a Session class of its own, so the hooks reach its sessions and no others.)"""
    event.listen(factory, "before_flush", _stamp_flushed)
    event.listen(factory, "after_transaction_end", _forget)
    factory.kw["info"] = {**factory.kw.get("info", {}), INSTALLED: True}
    return factory


def installed(session: Session) -> bool:
    """Whether `session` came from a factory passed through `install`."""
    return bool(session.info.get(INSTALLED))


def _stamp_flushed(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    for obj in (*session.new, *session.dirty):
        if isinstance(obj, Record):
            obj.version = stamp(session, obj.bucket)


def _forget(session: Session, transaction: SessionTransaction) -> None:
    # Also at the end of a savepoint: a rolled-back savepoint takes its bump with it, so
    # the next write bumps again (harmless after a released one: the lock is held).
    session.info.pop(_MEMO, None)
    if transaction.parent is None:
        session.info.pop(_WROTE, None)
