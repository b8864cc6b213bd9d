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
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, event, select, text
from sqlalchemy.orm import Session, SessionTransaction

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
        rows = connection.execute(
            select(RecordNumber.number, RecordNumber.resource_type, RecordNumber.uid)
            .where(RecordNumber.bucket == self.bucket, RecordNumber.number >= self.known)
            .order_by(RecordNumber.number)
        ).all()
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
            self.type_by_n.extend(TYPE_CODE[t] for t in types)
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


def assign(session: Session, bucket: str, groups: Sequence[tuple[str, Sequence[str]]]) -> Numbers:
    """The number of every (resource type, uids) record, numbering those that have none.
    Once per transaction: it takes the bucket's counter lock first, so what it finds
    missing is still missing when it writes."""
    start = int(session.execute(_LOCK, {"bucket": bucket}).scalar_one())
    known = numbering(session, bucket)
    session.info.setdefault(_ALLOCATED, set()).add(bucket)
    if known.known != start:
        # The counter and the rows committed together; anything else is a broken table.
        raise RuntimeError(f"record numbers of {bucket} end at {known.known}, counter {start}")
    parts: list[Numbers] = []
    fresh_numbers: list[int] = []
    fresh_types: list[str] = []
    fresh_uids: list[str] = []
    for resource_type, uids in groups:
        with known.lock:
            numbers = known.find(resource_type, uids)
        missing = np.flatnonzero(numbers < 0)
        if len(missing):
            first = start + len(fresh_numbers)
            fresh = np.arange(first, first + len(missing), dtype=np.int64)
            numbers[missing] = fresh
            fresh_numbers.extend(fresh.tolist())
            fresh_uids.extend(uids[i] for i in missing.tolist())
            fresh_types.extend([resource_type] * len(missing))
        parts.append(numbers)
    if fresh_numbers:
        rows = [
            {"bucket": bucket, "number": n, "resource_type": t, "uid": u}
            for n, t, u in zip(fresh_numbers, fresh_types, fresh_uids, strict=True)
        ]
        table: Any = RecordNumber.__table__
        insert_rows(session, table, rows)
        next_number = start + len(fresh_numbers)
        session.execute(_ADVANCE, {"bucket": bucket, "next": next_number})
        after_commit(session, lambda: known.learn(start, fresh_numbers, fresh_types, fresh_uids))
    return np.concatenate([np.zeros(0, dtype=np.int64), *parts])


def lookup(
    session: Session, bucket: str, groups: Sequence[tuple[str, Sequence[str]]]
) -> tuple[Numbers, list[tuple[str, str]]]:
    """Without writing: the numbers of the records that have one, and the records (type,
    uid) that have none (never in any snapshot)."""
    known = numbering(session, bucket)
    parts: list[Numbers] = []
    unnumbered: list[tuple[str, str]] = []
    for resource_type, uids in groups:
        with known.lock:
            numbers = known.find(resource_type, uids)
        parts.append(numbers[numbers >= 0])
        unnumbered.extend((resource_type, uids[i]) for i in np.flatnonzero(numbers < 0).tolist())
    return np.concatenate([np.zeros(0, dtype=np.int64), *parts]), unnumbered


def forget(engine: Engine) -> None:
    with _registry:
        _numberings.pop(engine, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_allocated(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_ALLOCATED, None)
