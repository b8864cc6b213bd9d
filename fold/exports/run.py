"""Writing an export: the segment's records streamed from the database in chunks, the
GDPR rule applied to each, into a writer that does not hold the file in memory. The API's
jobs, the streamed CSV and `fold export` all come through here."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy.orm import Session

from fold.audit.service import Change, record_writes
from fold.db.engine import small_cache
from fold.db.models import Record, Segment
from fold.exports.columns import Column, Reader, address_lines, row_values
from fold.exports.gdpr import Gdpr
from fold.exports.pdf import LabelWriter, TableWriter
from fold.exports.sheets import CsvWriter, XlsxWriter
from fold.ids import make_uri
from fold.segments.members import segment_filter, selection

FORMATS = ("csv", "xlsx", "pdf", "labels")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "labels": "application/pdf",
}
SUFFIXES = {"csv": "csv", "xlsx": "xlsx", "pdf": "pdf", "labels": "pdf"}
PROGRESS_EVERY = 2000


class Stopped(Exception):
    """The export was cancelled (or its job taken over) while it ran."""


@dataclass
class Counts:
    read: int = 0
    rows: int = 0
    left_out_gdpr: int = 0
    left_out_no_address: int = 0
    bypassed: int = 0


@dataclass(frozen=True)
class Document:
    """What the PDF shows about the segment."""

    title: str
    sentence: str
    made: str


READ = (
    Record.bucket,
    Record.resource_type,
    Record.uid,
    Record.data,
    Record.display_value,
    Record.created,
    Record.last_updated,
    Record.record_state,
)


def rows(session: Session, segment: Segment, batch: int = 1000) -> Iterator[Any]:
    """The segment's records as plain rows (attributes like a record's, no ORM state to
    build or free), in uid order, a batch at a time."""
    node = segment_filter(session, segment)
    stmt = selection(segment.bucket, segment.resource_type, node).with_only_columns(*READ)
    after = ""
    with small_cache(session):
        while True:
            found = session.execute(
                stmt.where(Record.uid > after).order_by(Record.uid).limit(batch)
            ).all()
            yield from found
            if len(found) < batch:
                return
            after = found[-1].uid


def selected(session: Session, segment: Segment, gdpr: Gdpr, counts: Counts) -> Iterator[Any]:
    """The segment's records in uid order, a chunk at a time, less those GDPR leaves out."""
    for record in rows(session, segment):
        counts.read += 1
        if gdpr.opted_out(record.data):
            if not gdpr.bypass:
                counts.left_out_gdpr += 1
                continue
            counts.bypassed += 1
        yield record


def write_export(
    session: Session,
    *,
    segment: Segment,
    fmt: str,
    columns: list[Column],
    gdpr: Gdpr,
    out: IO[bytes],
    tmpdir: str,
    document: Document,
    progress: Callable[[Counts], bool] | None = None,
) -> Counts:
    """Write the export to `out`; `progress` is called every few thousand records and
    stops the export by answering False."""
    counts = Counts()
    readers = [Reader(c) for c in columns]
    writer: Any
    text_out: io.TextIOWrapper | None = None
    if fmt == "csv":
        text_out = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
        writer = CsvWriter(text_out, columns)
    elif fmt == "xlsx":
        writer = XlsxWriter(out, columns, title=document.title, tmpdir=tmpdir)
    elif fmt == "pdf":
        writer = TableWriter(
            out, columns, title=document.title, sentence=document.sentence, made=document.made
        )
    else:
        writer = LabelWriter(out, title=document.title)
    for record in selected(session, segment, gdpr, counts):
        if fmt == "labels":
            lines = address_lines(record)
            if lines is None:
                counts.left_out_no_address += 1
            else:
                writer.write(lines)
                counts.rows += 1
        else:
            writer.write(row_values(readers, record))
            counts.rows += 1
        if progress is not None and counts.read % PROGRESS_EVERY == 0 and not progress(counts):
            raise Stopped
    writer.close()
    if text_out is not None:
        text_out.flush()
        text_out.detach()
    return counts


def audit_bypass(
    session: Session,
    *,
    segment: Segment,
    user_uri: str,
    fmt: str,
    gdpr: Gdpr,
    counts: Counts,
    journal_uri: str | None,
) -> None:
    """The audit entry of a GDPR bypass: its reason and how many opted-out contacts it let
    through, on the segment's trail."""
    note = {
        "gdpr_bypass_reason": gdpr.reason,
        "gdpr_channel": gdpr.channel,
        "gdpr_bypassed": counts.bypassed,
        "report_format": fmt,
    }
    if journal_uri:
        note["journal"] = journal_uri
    record_writes(
        session,
        bucket=segment.bucket,
        user_uri=user_uri,
        message=(
            f"GDPR bypass in a {fmt} export of segment '{segment.name}': {gdpr.reason} "
            f"({counts.bypassed} opted-out contacts included)"
        ),
        changes=[Change("segment", segment.uid, None, note)],
    )


def segment_uri(segment: Segment) -> str:
    return make_uri(segment.bucket, "segment", segment.uid)
