"""Export files in the database, in chunks, so that every API process can serve them and
none has to hold a whole file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import IO

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from fold.db.models import ExportChunk, ExportJournal

CHUNK_BYTES = 1 << 20


def store_file(session: Session, *, bucket: str, journal_uid: str, source: IO[bytes]) -> int:
    """Copy the file into chunks; answers its size."""
    session.execute(
        delete(ExportChunk).where(
            ExportChunk.bucket == bucket, ExportChunk.journal_uid == journal_uid
        )
    )
    size, seq = 0, 0
    while data := source.read(CHUNK_BYTES):
        session.execute(
            insert(ExportChunk).values(bucket=bucket, journal_uid=journal_uid, seq=seq, data=data)
        )
        size += len(data)
        seq += 1
    return size


def has_file(session: Session, *, bucket: str, journal_uid: str) -> bool:
    found = session.scalar(
        select(ExportChunk.seq)
        .where(ExportChunk.bucket == bucket, ExportChunk.journal_uid == journal_uid)
        .limit(1)
    )
    return found is not None


def read_chunks(
    factory: sessionmaker[Session], *, bucket: str, journal_uid: str
) -> Iterator[bytes]:
    """The file a chunk at a time, each read on its own (the request's session has closed)."""
    seq = 0
    while True:
        with factory() as session:
            data = session.scalar(
                select(ExportChunk.data).where(
                    ExportChunk.bucket == bucket,
                    ExportChunk.journal_uid == journal_uid,
                    ExportChunk.seq == seq,
                )
            )
        if data is None:
            return
        yield bytes(data)
        seq += 1


def purge_before(session: Session, cutoff: datetime) -> int:
    """Remove the files of exports made before `cutoff`, in every bucket; their journals
    stay, without a file name. Answers how many files went."""
    old = session.execute(
        select(ExportJournal.bucket, ExportJournal.uid).where(
            ExportJournal.created < cutoff, ExportJournal.file_name.is_not(None)
        )
    ).all()
    for bucket, uid in old:
        session.execute(
            delete(ExportChunk).where(ExportChunk.bucket == bucket, ExportChunk.journal_uid == uid)
        )
        journal = session.get(ExportJournal, (bucket, uid))
        if journal is not None:
            journal.file_name = None
    return len(old)
