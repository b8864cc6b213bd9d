"""The change clock: every record row carries the clock value of the transaction that last
wrote it (`records.version`), and a reader asks for "the value now" and "the rows changed
since a value it had". The column index (fold.columns) relies on that to stay exact.

The clock is kept differently on each database, behind the same functions:

- **PostgreSQL**: a row is stamped with its writing transaction's id
  (`pg_current_xact_id()`), and a reading is the reader's snapshot (`pg_current_snapshot`):
  every id below its xmax has ended, except the ids it lists as open. A reader that read
  the clock and then the rows has seen every transaction that had ended, so next time
  "version >= xmax, or one of the ids that were open" holds everything it has not seen
  (and some rows it has, from transactions that were open and still are: applying a row
  again is harmless). No writer of one record waits on another for the clock, so writers
  of one bucket commit side by side. (A counter, bumped first and locked to the commit,
  made them commit one at a time: docs/columns.md.)
- **SQLite**: one counter per bucket (`record_clocks`), bumped once by each writing
  transaction, which takes values in commit order since SQLite runs one writer at a time;
  "changed since V" is "version > V".

Rule for writers, so that they cannot deadlock: stamp before locking or writing any record
of the bucket. A transaction that writes one record (the API's create, patch, delete)
calls `stamp_one` (the ORM flush of a single new record does), or takes the value inside its
first statement, ahead of the row (`stamp_one_inline`: `records.writes`, one round trip
fewer); one that may lock or write more calls `stamp` (the bulk paths, which
put the value on each row themselves: `db.bulk.insert_rows` refuses a record row without
it). On PostgreSQL `stamp` takes the bucket's writer lock exclusively and `stamp_one` takes
it shared: writers of many records run one at a time, each waiting only on writers of one
record, which hold one record and wait for no record lock of theirs — so no cycle of waits
can form. (SQLite's own lock makes every writer run alone.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    bindparam,
    event,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction, sessionmaker

from fold.db.models import Record, RecordClock

_MEMO = "fold_clock"  # bucket -> (this transaction's clock value, whether it holds it alone)
_WROTE = "fold_clock_wrote"  # buckets this (outermost) transaction has written
_FIRST = "fold_clock_first"  # the one record a writer of one record writes
INSTALLED = "fold_clock_installed"  # set on sessions whose flushes stamp record rows

_BUMP = text(
    "INSERT INTO record_clocks (bucket, version) VALUES (:bucket, 1) "
    "ON CONFLICT (bucket) DO UPDATE SET version = record_clocks.version + 1 "
    "RETURNING version"
)
# The writer lock of a bucket: an advisory lock in a namespace of Fold's own ("Fold").
_LOCK_SPACE = 0x466F6C64
_TAKE_ALONE = text(
    "SELECT pg_advisory_xact_lock(:space, hashtext(:bucket)), pg_current_xact_id()::text::bigint"
)
_TAKE_SHARED = text(
    "SELECT pg_advisory_xact_lock_shared(:space, hashtext(:bucket)), "
    "pg_current_xact_id()::text::bigint"
)
_ERA = text("SELECT (pg_control_system()).system_identifier::text")
_SNAPSHOT = text("SELECT pg_current_snapshot()::text")


def stamp(session: Session, bucket: str) -> int:
    """This transaction's clock value for `bucket`, for a writer of many records: taken
    before any record of the bucket is locked or written."""
    return _stamp(session, bucket, alone=True)


def stamp_one(session: Session, bucket: str, resource_type: str, uid: str) -> int:
    """This transaction's clock value for `bucket`, for a writer of one record (this one):
    taken before the record is locked or written. A second record makes the transaction
    a writer of many, as if it had called `stamp` (better call that first)."""
    first = session.info.setdefault(_FIRST, (bucket, resource_type, uid))
    if first != (bucket, resource_type, uid):
        return stamp(session, bucket)
    return _stamp(session, bucket, alone=False)


def _stamp(session: Session, bucket: str, *, alone: bool) -> int:
    memo: dict[str, tuple[int, bool]] = session.info.setdefault(_MEMO, {})
    held = memo.get(bucket)
    if held is not None and (held[1] or not alone):
        return held[0]
    if session.get_bind().dialect.name == "postgresql":
        params = {"space": _LOCK_SPACE, "bucket": bucket}
        row = session.execute(_TAKE_ALONE if alone else _TAKE_SHARED, params).one()
        value = int(row[1])
    else:
        value = held[0] if held else int(session.execute(_BUMP, {"bucket": bucket}).scalar_one())
    memo[bucket] = (value, alone)
    session.info.setdefault(_WROTE, set()).add(bucket)
    return value


# A writer of one record on PostgreSQL takes the clock inside its first statement (a
# materialized CTE named `clock`, column `v`), which saves a round trip per write. The row
# it locks or writes comes out of a join with that CTE, so the writer lock is still held
# before any record lock is (a row is only locked once a joined tuple is made).
_TAKE_SHARED_INLINE = (
    "SELECT pg_advisory_xact_lock_shared(:clock_space, hashtext(:clock_bucket)) AS lock, "
    "pg_current_xact_id()::text::bigint AS v"
)
_HELD_INLINE = "SELECT CAST(:clock_value AS BIGINT) AS v"
INLINE_SQL = {True: _TAKE_SHARED_INLINE, False: _HELD_INLINE}  # by `InlineStamp.takes`


@dataclass(frozen=True)
class InlineStamp:
    """The clock value of a writer of one record, as the SQL of a one-row SELECT whose
    column `v` is the value (PostgreSQL): either taking it there (`takes`: then tell
    `took` the value the statement read) or the value already held."""

    sql: str
    params: dict[str, Any]
    takes: bool


def stamp_one_inline(session: Session, bucket: str, resource_type: str, uid: str) -> InlineStamp:
    """`stamp_one` for a statement that takes the clock itself (PostgreSQL only): the SQL
    to put first, as a CTE named `clock`."""
    first = session.info.setdefault(_FIRST, (bucket, resource_type, uid))
    held = session.info.get(_MEMO, {}).get(bucket)
    if held is None and first == (bucket, resource_type, uid):
        params = {"clock_space": _LOCK_SPACE, "clock_bucket": bucket}
        return InlineStamp(_TAKE_SHARED_INLINE, params, takes=True)
    value = stamp_one(session, bucket, resource_type, uid)
    return InlineStamp(_HELD_INLINE, {"clock_value": value}, takes=False)


def took(session: Session, stamp: InlineStamp, bucket: str, value: int) -> None:
    """What a statement made with `stamp_one_inline` read of the clock: held from now on."""
    if stamp.takes:
        session.info.setdefault(_MEMO, {})[bucket] = (value, False)
        session.info.setdefault(_WROTE, set()).add(bucket)


def wrote(session: Session, bucket: str) -> bool:
    """Whether this transaction has written (or is about to write) the bucket's records."""
    return bucket in session.info.get(_WROTE, ())


@dataclass(frozen=True)
class Reading:
    """What a reader read of the clock: every write below `upto` has ended, except the
    transactions in `open` (PostgreSQL's, still open then); on SQLite `upto` is the
    counter. Readings of one database only grow."""

    upto: int
    open: tuple[int, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"seen": self.upto, "seen_open": list(self.open)}

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> Reading:
        return cls(int(saved["seen"]), tuple(int(x) for x in saved.get("seen_open", ())))


NEVER = Reading(-1)  # before any write: "changed since" is every row


def current(connection: Connection, bucket: str) -> Reading:
    """The clock now: read it before reading the rows changed since the last reading."""
    if connection.dialect.name == "postgresql":
        return _reading(str(connection.scalar(_SNAPSHOT)))
    value = connection.scalar(select(RecordClock.version).where(RecordClock.bucket == bucket))
    return Reading(int(value or 0))


def _reading(snapshot: str) -> Reading:
    # "xmin:xmax:xip,...": ids below xmax have ended, except those listed.
    _, upto, listed = snapshot.split(":")
    return Reading(int(upto), tuple(int(x) for x in listed.split(",") if x))


@dataclass(frozen=True)
class Changes:
    """A select of the rows changed since a reading (`changed_since_bound`), and beside it
    the clock: built once, read at every catch-up with the reading as parameters. (Built
    anew each time, the statement cost more CPU than the round trip it saves.)"""

    rows: Select[Any]
    statement: Select[Any]

    @classmethod
    def of(cls, dialect: str, rows: Select[Any]) -> Changes:
        if dialect != "postgresql":
            return cls(rows, rows)
        changed = rows.lateral("changed")
        clock = select(literal_column("pg_current_snapshot()::text").label("snapshot")).subquery()
        both = select(clock.c.snapshot, *changed.c).select_from(clock.outerjoin(changed, true()))
        return cls(rows, both)

    def read(
        self, connection: Connection, bucket: str, seen: Reading
    ) -> tuple[Reading, Sequence[Sequence[Any]]]:
        """The clock now and, when it has moved since `seen`, the rows changed since, read
        at one moment. On PostgreSQL in one statement, whose snapshot is both the reading
        and what the rows were read under: one round trip, and exactly the rows that
        reading has seen."""
        params = {_SEEN_UPTO: seen.upto, _SEEN_OPEN: list(seen.open)}
        if connection.dialect.name != "postgresql":
            now = current(connection, bucket)
            if not may_have_changed(seen, now):
                return now, []
            return now, connection.execute(self.statement, params).all()
        found = connection.execute(self.statement, params).all()
        # No row changed: one row, the reading beside NULLs (a record's uid is never NULL).
        return _reading(str(found[0][0])), [r[1:] for r in found if r[1] is not None]


def era(connection: Connection) -> str:
    """What the clock's values are counted within, beyond the database: on PostgreSQL
    transaction ids are the cluster's (a dump restored elsewhere counts them anew)."""
    if connection.dialect.name != "postgresql":
        return ""
    return str(connection.scalar(_ERA))


def changed_since(dialect: str, seen: Reading) -> ColumnElement[bool]:
    """The condition on a record row for "written since the clock read `seen`": on
    PostgreSQL by a transaction that had not ended then (an index range and a few ids)."""
    if dialect != "postgresql":
        return Record.version > seen.upto
    if not seen.open:
        return Record.version >= seen.upto
    return or_(Record.version >= seen.upto, Record.version.in_(seen.open))


_SEEN_UPTO = "clock_seen_upto"
_SEEN_OPEN = "clock_seen_open"


def changed_since_bound(dialect: str) -> ColumnElement[bool]:
    """`changed_since` for a statement built once (`Changes`): the reading is its
    parameters."""
    if dialect != "postgresql":
        return Record.version > bindparam(_SEEN_UPTO)
    return or_(
        Record.version >= bindparam(_SEEN_UPTO),
        Record.version.in_(bindparam(_SEEN_OPEN, expanding=True)),
    )


def may_have_changed(seen: Reading, now: Reading) -> bool:
    """Whether rows may have been written between two readings (the same reading: none
    began or ended, so nothing was committed)."""
    return now != seen


def behind(now: Reading, seen: Reading) -> bool:
    """Whether the clock now reads behind a reading taken before: the database went back
    (restored from a backup), and what was read of it since `seen` does not hold."""
    return now.upto < seen.upto


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
    written = [obj for obj in (*session.new, *session.dirty) if isinstance(obj, Record)]
    for obj in written:
        if len(written) == 1:
            obj.version = stamp_one(session, obj.bucket, obj.resource_type, obj.uid)
        else:
            obj.version = stamp(session, obj.bucket)


def _forget(session: Session, transaction: SessionTransaction) -> None:
    # Also at the end of a savepoint: a rolled-back savepoint takes its bump (and on
    # PostgreSQL its lock) with it, so the next write takes them again (harmless after a
    # released one: a lock taken again in the same transaction is already held).
    session.info.pop(_MEMO, None)
    if transaction.parent is None:
        session.info.pop(_WROTE, None)
        session.info.pop(_FIRST, None)
