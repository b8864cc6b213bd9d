"""A stable integer per record: membership snapshots are roaring bitmaps over these.

Records are keyed by 24-hex uids, far too wide for a compact set; so the first snapshot
that holds a record gives it the bucket's next number (`record_numbers`), kept for good.
Numbers are dense from 0 and handed out under the bucket's counter row lock, so they
commit in order: a process that has read every number below N learns the new ones by
reading `number >= N`. Each process keeps what it has read: uid -> number in a dict
per type, number -> record in a list.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, event, select, text
from sqlalchemy.orm import Session, SessionTransaction

from fold.columns.store import Store
from fold.db.bulk import insert_rows
from fold.db.engine import after_commit
from fold.db.models import RecordNumber
from fold.ids import RESOURCE_TYPES

Numbers = np.ndarray[Any, np.dtype[np.int64]]
TYPE_CODE = {t: i for i, t in enumerate(RESOURCE_TYPES)}
_ALLOCATED = "fold_numbers_allocated"

# Locks the counter row (creating it) without changing it: whoever holds it numbers next.
_LOCK = text(
    "INSERT INTO record_number_counters (bucket, next) VALUES (:bucket, 0) "
    "ON CONFLICT (bucket) DO UPDATE SET next = record_number_counters.next "
    "RETURNING next"
)
_ADVANCE = text("UPDATE record_number_counters SET next = :next WHERE bucket = :bucket")


class Numbering:
    """The numbers of one bucket this process has read."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self.lock = threading.Lock()
        self.uid_by_n: list[str] = []
        self.type_by_n = bytearray()  # index into RESOURCE_TYPES
        # Per resource type: uid -> number (a dict: numpy's binary search over 24-byte
        # strings is several times slower at a million).
        self.index: dict[str, dict[str, int]] = {}

    @property
    def known(self) -> int:
        return len(self.uid_by_n)

    def catch_up(self, connection: Connection) -> None:
        result = connection.execute(
            select(RecordNumber.number, RecordNumber.resource_type, RecordNumber.uid)
            .where(RecordNumber.bucket == self.bucket, RecordNumber.number >= self.known)
            .order_by(RecordNumber.number)
        )
        # The driver's own tuples (integers and strings need no conversion): building a
        # SQLAlchemy row for each of a million takes longer than reading them.
        rows = result.cursor.fetchall()
        result.close()
        if rows:
            self._extend([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])

    def learn(self, start: int, numbers: list[int], types: list[str], uids: list[str]) -> None:
        """Numbers this process gave, once committed: kept unless another read got there
        first (numbers commit in order, so `start` says whether these come next)."""
        with self.lock:
            if self.known == start and numbers:
                self._extend(numbers, types, uids)

    def _extend(self, numbers: list[int], types: list[str], uids: list[str]) -> None:
        if numbers[0] == self.known and numbers[-1] == self.known + len(numbers) - 1:
            self.uid_by_n.extend(uids)
            kinds = set(types)
            if len(kinds) == 1:
                self.type_by_n.extend(bytes([TYPE_CODE[types[0]]]) * len(types))
            else:
                self.type_by_n.extend(bytes([TYPE_CODE[t] for t in types]))
        else:  # not dense: cannot happen while the counter and rows commit together
            for n, resource_type, uid in zip(numbers, types, uids, strict=True):
                while self.known < n:
                    self.uid_by_n.append("")
                    self.type_by_n.append(TYPE_CODE["contact"])
                self.uid_by_n.append(uid)
                self.type_by_n.append(TYPE_CODE[resource_type])
        for resource_type in set(types):
            self.index.setdefault(resource_type, {})
        if len(set(types)) == 1:
            self.index[types[0]].update(zip(uids, numbers, strict=True))
            return
        for n, resource_type, uid in zip(numbers, types, uids, strict=True):
            self.index[resource_type][uid] = n

    def find(self, resource_type: str, uids: Sequence[str]) -> Numbers:
        """The number of each uid, -1 where it has none."""
        get = self.index.get(resource_type, {}).get
        return np.fromiter((get(u, -1) for u in uids), dtype=np.int64, count=len(uids))

    def records(self, numbers: Sequence[int]) -> list[tuple[str, str]]:
        """(resource type, uid) of each number."""
        return [(RESOURCE_TYPES[self.type_by_n[n]], self.uid_by_n[n]) for n in numbers]


_numberings: weakref.WeakKeyDictionary[Engine, dict[str, Numbering]] = weakref.WeakKeyDictionary()
_registry = threading.Lock()


def numbering(session: Session, bucket: str) -> Numbering:
    """The bucket's numbers, caught up with every committed one. Not after this
    transaction numbered records itself: it would read its own uncommitted numbers."""
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    with _registry:
        found = _numberings.setdefault(engine, {}).get(bucket)
        if found is None:
            found = _numberings[engine][bucket] = Numbering(bucket)
    if bucket in session.info.get(_ALLOCATED, ()):
        raise RuntimeError("a transaction numbers records once; read numbers before that")
    with found.lock:
        found.catch_up(session.connection())
    return found


@dataclass
class Selected:
    """Records a segment selects: rows of a column store, or (type, uids) groups."""

    store: Store | None = None
    rows: Any = None  # store rows (numpy), with `store`
    groups: list[tuple[str, list[str]]] = field(default_factory=list)


class RowNumbers:
    """The number of each row of one column store (-1: none), so that a big segment's
    members find their numbers with one numpy take instead of a million dict look-ups."""

    def __init__(self) -> None:
        self.numbers: Numbers = np.zeros(0, dtype=np.int64)
        self.known_at = 0  # numbers below this have been placed

    def update(self, store: Store, known: Numbering) -> Numbers:
        """Caught up with the store's new rows and the numbering's new numbers."""
        old = len(self.numbers)
        if old < store.n:
            by_uid = known.index.get(store.resource_type, {}).get
            fresh = np.fromiter(
                (by_uid(u, -1) for u in store.uids.take(np.arange(old, store.n))),
                dtype=np.int64,
                count=store.n - old,
            )
            self.numbers = np.concatenate([self.numbers, fresh])
        # Rows read just now saw every number; older rows learn the numbers given since.
        if self.known_at < known.known and old:
            code = TYPE_CODE[store.resource_type]
            given = [n for n in range(self.known_at, known.known) if known.type_by_n[n] == code]
            rows = store.uids.locate([known.uid_by_n[n] for n in given])
            for n, row in zip(given, rows.tolist(), strict=True):
                if 0 <= row < old:
                    self.numbers[row] = n
        self.known_at = known.known
        return self.numbers


# By id(store) (stores are unhashable dataclasses), dropped when the store is freed.
_row_numbers: dict[int, RowNumbers] = {}


def _row_numbers_of(store: Store) -> RowNumbers:
    """Called with the registry lock held."""
    found = _row_numbers.get(id(store))
    if found is None:
        found = _row_numbers[id(store)] = RowNumbers()
        weakref.finalize(store, _row_numbers.pop, id(store), None)
    return found


def lock_counter(session: Session, bucket: str) -> int:
    """Take the bucket's numbering lock for this transaction; the next free number. Take
    it before looking numbers up, so what is found missing is still missing when given."""
    return int(session.execute(_LOCK, {"bucket": bucket}).scalar_one())


def lookup(
    session: Session, bucket: str, selected: Selected
) -> tuple[Numbers, list[tuple[str, str]]]:
    """The numbers of the selected records that have one, and the records (type, uid)
    that have none (never in any snapshot)."""
    known = numbering(session, bucket)
    if selected.store is not None:
        store = selected.store
        with known.lock, _registry:
            by_row = _row_numbers_of(store).update(store, known)
            numbers = by_row[selected.rows]
        missing = selected.rows[numbers < 0].tolist()
        kind = store.resource_type
        return numbers[numbers >= 0], [(kind, u) for u in store.uids.take(missing)]
    parts: list[Numbers] = []
    unnumbered: list[tuple[str, str]] = []
    for resource_type, group in selected.groups:
        with known.lock:
            numbers = known.find(resource_type, group)
        parts.append(numbers[numbers >= 0])
        unnumbered.extend((resource_type, group[i]) for i in np.flatnonzero(numbers < 0).tolist())
    return np.concatenate([np.zeros(0, dtype=np.int64), *parts]), unnumbered


def give(session: Session, bucket: str, start: int, records: list[tuple[str, str]]) -> Numbers:
    """Number `records` (none of which has one) from `start`, the counter `lock_counter`
    answered in this transaction. Once per transaction."""
    known = numbering(session, bucket)
    if known.known != start:
        # The counter and the rows commit together; anything else is a broken table.
        raise RuntimeError(f"record numbers of {bucket} end at {known.known}, counter {start}")
    session.info.setdefault(_ALLOCATED, set()).add(bucket)
    if not records:
        return np.zeros(0, dtype=np.int64)
    numbers = list(range(start, start + len(records)))
    types = [t for t, _ in records]
    uids = [u for _, u in records]
    rows = [
        {"bucket": bucket, "number": n, "resource_type": t, "uid": u}
        for n, (t, u) in zip(numbers, records, strict=True)
    ]
    table: Any = RecordNumber.__table__
    insert_rows(session, table, rows)
    session.execute(_ADVANCE, {"bucket": bucket, "next": start + len(records)})
    after_commit(session, lambda: known.learn(start, numbers, types, uids))
    return np.arange(start, start + len(records), dtype=np.int64)


def forget(engine: Engine) -> None:
    with _registry:
        _numberings.pop(engine, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_allocated(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_ALLOCATED, None)
