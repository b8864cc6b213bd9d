"""A stable integer per record: membership snapshots are roaring bitmaps over these.

Records are keyed by 24-hex uids, far too wide for a compact set; so the first snapshot
that holds a record gives it the bucket's next number (`record_numbers`), kept for good.
Numbers are dense from 0 and handed out under the bucket's counter row lock, so they
commit in order: a process that has read every number below N learns the new ones by
reading `number >= N`. Each process keeps what it has read in numpy arrays (uid -> number
by binary search, number -> record by index), about 40 bytes a record.
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

UIDS = np.dtype("S24")
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


def uid_array(uids: Sequence[str]) -> np.ndarray[Any, Any]:
    return np.array(uids, dtype=UIDS)


class Numbering:
    """The numbers of one bucket this process has read."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self.lock = threading.Lock()
        self.known = 0
        self.uid_by_n = np.zeros(0, dtype=UIDS)
        self.type_by_n = np.zeros(0, dtype=np.int16)
        # Per resource type: uids sorted, and the number of each.
        self.index: dict[str, tuple[np.ndarray[Any, Any], Numbers]] = {}

    def catch_up(self, connection: Connection) -> None:
        rows = connection.execute(
            select(RecordNumber.number, RecordNumber.resource_type, RecordNumber.uid)
            .where(RecordNumber.bucket == self.bucket, RecordNumber.number >= self.known)
            .order_by(RecordNumber.number)
        ).all()
        if not rows:
            return
        numbers = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        types = np.fromiter((TYPE_CODE[r[1]] for r in rows), dtype=np.int16, count=len(rows))
        self._extend(numbers, types, uid_array([r[2] for r in rows]))

    def learn(self, start: int, numbers: Numbers, types: Any, uids: Any) -> None:
        """Numbers this process gave, once committed: kept unless another read got there
        first (numbers commit in order, so `start` says whether these come next)."""
        with self.lock:
            if self.known == start and len(numbers):
                self._extend(numbers, types, uids)

    def _extend(self, numbers: Numbers, types: Any, uids: Any) -> None:
        size = int(numbers[-1]) + 1
        uid_by_n = np.zeros(size, dtype=UIDS)
        type_by_n = np.full(size, -1, dtype=np.int16)
        uid_by_n[: self.known] = self.uid_by_n
        type_by_n[: self.known] = self.type_by_n
        uid_by_n[numbers] = uids
        type_by_n[numbers] = types
        self.uid_by_n, self.type_by_n, self.known = uid_by_n, type_by_n, size
        for code in np.unique(types).tolist():
            chosen = types == code
            self._add(RESOURCE_TYPES[code], uids[chosen], numbers[chosen])

    def _add(self, resource_type: str, uids: np.ndarray[Any, Any], numbers: Numbers) -> None:
        old_uids, old_numbers = self.index.get(
            resource_type, (np.zeros(0, dtype=UIDS), np.zeros(0, dtype=np.int64))
        )
        all_uids = np.concatenate([old_uids, uids])
        all_numbers = np.concatenate([old_numbers, numbers])
        order = np.argsort(all_uids, kind="stable")
        self.index[resource_type] = (all_uids[order], all_numbers[order])

    def find(self, resource_type: str, uids: np.ndarray[Any, Any]) -> Numbers:
        """The number of each uid, -1 where it has none."""
        known = self.index.get(resource_type)
        if known is None or not len(known[0]) or not len(uids):
            return np.full(len(uids), -1, dtype=np.int64)
        sorted_uids, numbers = known
        at = np.minimum(np.searchsorted(sorted_uids, uids), len(sorted_uids) - 1)
        return np.where(sorted_uids[at] == uids, numbers[at], -1)

    def records(self, numbers: Sequence[int]) -> list[tuple[str, str]]:
        """(resource type, uid) of each number."""
        picked = np.asarray(numbers, dtype=np.int64)
        uids = self.uid_by_n[picked].tolist()
        types = self.type_by_n[picked].tolist()
        return [(RESOURCE_TYPES[t], u.decode()) for t, u in zip(types, uids, strict=True)]


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
    rows: list[dict[str, Any]] = []
    given: list[tuple[Numbers, Any, Any]] = []
    next_number = start
    for resource_type, uids in groups:
        as_array = uid_array(uids)
        with known.lock:
            numbers = known.find(resource_type, as_array)
        missing = np.flatnonzero(numbers < 0)
        if len(missing):
            fresh = np.arange(next_number, next_number + len(missing), dtype=np.int64)
            numbers[missing] = fresh
            next_number += len(missing)
            rows.extend(
                {"bucket": bucket, "number": n, "resource_type": resource_type, "uid": u}
                for n, u in zip(fresh.tolist(), (uids[i] for i in missing.tolist()), strict=True)
            )
            codes = np.full(len(missing), TYPE_CODE[resource_type], dtype=np.int16)
            given.append((fresh, codes, as_array[missing]))
        parts.append(numbers)
    if rows:
        table: Any = RecordNumber.__table__
        insert_rows(session, table, rows)
        session.execute(_ADVANCE, {"bucket": bucket, "next": next_number})
        fresh_all = np.concatenate([g[0] for g in given])
        codes_all = np.concatenate([g[1] for g in given])
        uids_all = np.concatenate([g[2] for g in given])
        after_commit(session, lambda: known.learn(start, fresh_all, codes_all, uids_all))
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
            numbers = known.find(resource_type, uid_array(uids))
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
