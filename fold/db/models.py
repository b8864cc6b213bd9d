"""The tables. Every tenant table leads its primary key and indexes with `bucket`.

Identity tables (api keys, users) are global: a key or user is granted a policy per bucket
through the grant tables, which are keyed by bucket like everything else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from fold.db.jsonsql import JsonLink

JSONDoc = JSON().with_variant(JSONB(), "postgresql")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Bucket(Base):
    __tablename__ = "buckets"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    created: Mapped[datetime] = mapped_column(DateTime())
    webhook_secret: Mapped[str | None] = mapped_column(String(200), nullable=True)


class Record(Base):
    __tablename__ = "records"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    uid: Mapped[str] = mapped_column(String(24), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    created: Mapped[datetime] = mapped_column(DateTime())
    last_updated: Mapped[datetime] = mapped_column(DateTime())
    record_state: Mapped[str] = mapped_column(String(8))
    display_value: Mapped[str] = mapped_column(Text())
    search_text: Mapped[str] = mapped_column(Text())
    unique_key: Mapped[str | None] = mapped_column(Text(), nullable=True)
    # The bucket's change clock when this row was last written (fold.records.clock).
    version: Mapped[int] = mapped_column(BigInteger(), server_default="0", default=0)

    __table_args__ = (
        Index("ix_records_version", "bucket", "resource_type", "version"),
        Index("ix_records_state", "bucket", "resource_type", "record_state", "last_updated"),
        # SQLite: active records in uid order without their rows (migration 0014); queries
        # spell the state as a literal (members.ACTIVE), which a partial index needs.
        # Not on PostgreSQL, where every update of a record (never a HOT one: the link
        # indexes read its document) would write one more index entry, and a scan of it
        # reads the rows anyway once updates have cleared the visibility map.
        Index(
            "ix_records_active",
            "bucket",
            "resource_type",
            "uid",
            sqlite_where=text("record_state = 'active'"),
        ).ddl_if(dialect="sqlite"),
        Index(
            "uq_records_unique_key",
            "bucket",
            "resource_type",
            "unique_key",
            unique=True,
            sqlite_where=text("record_state = 'active' AND unique_key IS NOT NULL"),
            postgresql_where=text("record_state = 'active' AND unique_key IS NOT NULL"),
        ),
        # Rows written in bulk (db.bulk.insert_rows) must carry these: a record row without
        # its change clock would never reach the column index.
        {"info": {"bulk_requires": ("version",)}},
    )


# Related-record rules look up a type's records by the link field naming another record
# (migration 0013); spelt as the rules compile the lookup, per dialect. On PostgreSQL only
# the records that have the link are in them (migration 0015).
for _link in ("contact", "organisation"):
    Index(
        f"ix_records_link_{_link}",
        Record.bucket,
        Record.resource_type,
        JsonLink(Record.data, _link),
        postgresql_where=JsonLink(Record.data, _link).is_not(None),
    )


class RecordClock(Base):
    """Bumped once by each transaction that writes a bucket's records."""

    __tablename__ = "record_clocks"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger())


class DatabaseIdentity(Base):
    """One row: a random value made with the database, naming it apart from any other
    (the column index's files on disk belong to one database)."""

    __tablename__ = "database_identity"
    id: Mapped[int] = mapped_column(Integer(), primary_key=True)
    value: Mapped[str] = mapped_column(String(32))


class AuditEntry(Base):
    __tablename__ = "audit_entries"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    uid: Mapped[str] = mapped_column(String(24), primary_key=True)
    date: Mapped[datetime] = mapped_column(DateTime())
    resource_type: Mapped[str] = mapped_column(String(32))
    record_uid: Mapped[str] = mapped_column(String(24))
    user_uri: Mapped[str] = mapped_column(Text())
    message: Mapped[str] = mapped_column(Text())
    diff: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc)

    __table_args__ = (
        Index("ix_audit_record", "bucket", "resource_type", "record_uid", "uid"),
        Index("ix_audit_date", "bucket", "date"),
    )


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(Text())
    username: Mapped[str | None] = mapped_column(String(150), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime())
    revoked: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)


class KeyGrant(Base):
    __tablename__ = "key_grants"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    policy: Mapped[str] = mapped_column(String(16))


class User(Base):
    __tablename__ = "users"
    username: Mapped[str] = mapped_column(String(150), primary_key=True)
    password_hash: Mapped[str] = mapped_column(Text())
    created: Mapped[datetime] = mapped_column(DateTime())


class UserGrant(Base):
    __tablename__ = "user_grants"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    username: Mapped[str] = mapped_column(String(150), primary_key=True)
    policy: Mapped[str] = mapped_column(String(16))


class CustomField(Base):
    __tablename__ = "custom_fields"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    field: Mapped[str] = mapped_column(String(200), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(Text())
    form_type: Mapped[str] = mapped_column(String(32))


class Segment(Base):
    __tablename__ = "segments"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    uid: Mapped[str] = mapped_column(String(24), primary_key=True)
    name: Mapped[str] = mapped_column(Text())
    description: Mapped[str] = mapped_column(Text())
    segment_type: Mapped[str] = mapped_column(String(16))
    resource_type: Mapped[str] = mapped_column(String(32))
    view_context: Mapped[list[str]] = mapped_column(JSONDoc)
    parent_uid: Mapped[str | None] = mapped_column(String(24), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean())
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc)
    system_segment: Mapped[bool] = mapped_column(Boolean())
    tags: Mapped[list[str]] = mapped_column(JSONDoc)
    mailchimp_sync: Mapped[bool] = mapped_column(Boolean())
    legacy_uid: Mapped[str | None] = mapped_column(Text(), nullable=True)
    record_state: Mapped[str] = mapped_column(String(8))
    version: Mapped[int] = mapped_column(Integer())
    created: Mapped[datetime] = mapped_column(DateTime())
    last_updated: Mapped[datetime] = mapped_column(DateTime())

    __table_args__ = (
        Index("ix_segments_state", "bucket", "record_state", "name"),
        Index("ix_segments_parent", "bucket", "parent_uid"),
    )


class SegmentUri(Base):
    """The include and exclude lists of static and hybrid segments, one row a record."""

    __tablename__ = "segment_uris"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    segment_uid: Mapped[str] = mapped_column(String(24), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    record_uid: Mapped[str] = mapped_column(String(24), primary_key=True)
    position: Mapped[int] = mapped_column(Integer())


class Fieldset(Base):
    __tablename__ = "fieldsets"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    uid: Mapped[str] = mapped_column(String(24), primary_key=True)
    name: Mapped[str] = mapped_column(Text())
    description: Mapped[str] = mapped_column(Text())
    fields: Mapped[list[str]] = mapped_column(JSONDoc)
    applicable_resources: Mapped[list[str]] = mapped_column(JSONDoc)
    locked: Mapped[bool] = mapped_column(Boolean())
    created: Mapped[datetime] = mapped_column(DateTime())
    last_updated: Mapped[datetime] = mapped_column(DateTime())


class Postcode(Base):
    __tablename__ = "postcodes"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    postcode: Mapped[str] = mapped_column(String(12), primary_key=True)
    lat: Mapped[float] = mapped_column(Float())
    lng: Mapped[float] = mapped_column(Float())


class Job(Base):
    """A bulk action, export or sync: shown as a `sheep_event` record (SPEC 3.1)."""

    __tablename__ = "jobs"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    uid: Mapped[str] = mapped_column(String(24), primary_key=True)
    action: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text())
    params: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    segment_uid: Mapped[str | None] = mapped_column(String(24), nullable=True)
    undo_of: Mapped[str | None] = mapped_column(String(24), nullable=True)
    user_uri: Mapped[str] = mapped_column(Text())
    status: Mapped[str] = mapped_column(String(16))
    total: Mapped[int] = mapped_column(Integer())
    processed: Mapped[int] = mapped_column(Integer())
    succeeded: Mapped[int] = mapped_column(Integer())
    failed: Mapped[int] = mapped_column(Integer())
    skipped: Mapped[int] = mapped_column(Integer())
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc)
    created: Mapped[datetime] = mapped_column(DateTime())
    started: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    finished: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index("ix_jobs_status", "bucket", "status"),
        Index("ix_jobs_segment", "bucket", "segment_uid", "action", "created"),
    )


class JobItem(Base):
    """One record of a job's frozen set, and what the job did to it."""

    __tablename__ = "job_items"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    job_uid: Mapped[str] = mapped_column(String(24), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer(), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(32))
    record_uid: Mapped[str] = mapped_column(String(24))
    state: Mapped[str] = mapped_column(String(8))
    undo: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)

    __table_args__ = (Index("ix_job_items_state", "bucket", "job_uid", "state", "seq"),)


class SegmentVersion(Base):
    """A segment's definition as one change left it (SPEC 12, versions)."""

    __tablename__ = "segment_versions"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    segment_uid: Mapped[str] = mapped_column(String(24), primary_key=True)
    number: Mapped[int] = mapped_column(Integer(), primary_key=True)
    created: Mapped[datetime] = mapped_column(DateTime())
    user_uri: Mapped[str] = mapped_column(Text())
    action: Mapped[str] = mapped_column(String(16))
    definition: Mapped[dict[str, Any]] = mapped_column(JSONDoc)


class RecordNumber(Base):
    """A stable integer per record of a bucket, given the first time a snapshot holds the
    record: snapshots are bitmaps over these numbers."""

    __tablename__ = "record_numbers"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger(), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(32))
    uid: Mapped[str] = mapped_column(String(24))

    __table_args__ = (
        Index("uq_record_numbers_record", "bucket", "resource_type", "uid", unique=True),
    )


class RecordNumberCounter(Base):
    """The next free record number of a bucket; its row lock orders the writers."""

    __tablename__ = "record_number_counters"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    next: Mapped[int] = mapped_column(BigInteger())


class SegmentSnapshot(Base):
    """A segment's members at one moment, as a serialized roaring bitmap of numbers."""

    __tablename__ = "segment_snapshots"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    uid: Mapped[str] = mapped_column(String(24), primary_key=True)
    segment_uid: Mapped[str] = mapped_column(String(24))
    taken: Mapped[datetime] = mapped_column(DateTime())
    count: Mapped[int] = mapped_column(BigInteger())
    members: Mapped[bytes] = mapped_column(LargeBinary())
    trigger: Mapped[str] = mapped_column(String(16))
    user_uri: Mapped[str] = mapped_column(Text())

    __table_args__ = (Index("ix_segment_snapshots_taken", "bucket", "segment_uid", "taken"),)


class SnapshotSchedule(Base):
    """When a segment's snapshots are taken and how long they are kept."""

    __tablename__ = "snapshot_schedules"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    segment_uid: Mapped[str] = mapped_column(String(24), primary_key=True)
    schedule: Mapped[str | None] = mapped_column(Text(), nullable=True)
    keep_last: Mapped[int | None] = mapped_column(Integer(), nullable=True)
    keep_days: Mapped[int | None] = mapped_column(Integer(), nullable=True)
    next_run: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)


class BucketSetting(Base):
    """One section of a bucket's outside-service settings (smtp, sms, ...), the whole
    section encrypted with Fernet (fold.settings.crypto): secrets are never stored plain."""

    __tablename__ = "bucket_settings"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    section: Mapped[str] = mapped_column(String(32), primary_key=True)
    sealed: Mapped[str] = mapped_column(Text())
    last_updated: Mapped[datetime] = mapped_column(DateTime())


class MessageTemplate(Base):
    """An email, SMS or in-app message template (Jinja2, rendered in the sandbox)."""

    __tablename__ = "message_templates"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    uid: Mapped[str] = mapped_column(String(24), primary_key=True)
    name: Mapped[str] = mapped_column(Text())
    channel: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(Text())
    text_body: Mapped[str] = mapped_column(Text())
    html_body: Mapped[str] = mapped_column(Text())
    created: Mapped[datetime] = mapped_column(DateTime())
    last_updated: Mapped[datetime] = mapped_column(DateTime())

    __table_args__ = (Index("ix_message_templates_name", "bucket", "name"),)


class ExportJournal(Base):
    """What an export wrote: the `journal` record of SPEC 4. Its uid is its job's uid."""

    __tablename__ = "export_journals"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    uid: Mapped[str] = mapped_column(String(24), primary_key=True)
    segment_uid: Mapped[str] = mapped_column(String(24))
    segment_name: Mapped[str] = mapped_column(Text())
    report_format: Mapped[str] = mapped_column(String(16))
    fieldset: Mapped[str | None] = mapped_column(Text(), nullable=True)
    gdpr_channel: Mapped[str] = mapped_column(String(8))
    gdpr_bypass: Mapped[bool] = mapped_column(Boolean())
    gdpr_bypass_reason: Mapped[str | None] = mapped_column(Text(), nullable=True)
    rows: Mapped[int] = mapped_column(Integer())
    left_out_gdpr: Mapped[int] = mapped_column(Integer())
    left_out_no_address: Mapped[int] = mapped_column(Integer())
    bypassed: Mapped[int] = mapped_column(Integer())
    user_uri: Mapped[str] = mapped_column(Text())
    created: Mapped[datetime] = mapped_column(DateTime())
    finished: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    file_name: Mapped[str | None] = mapped_column(Text(), nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger(), nullable=True)

    __table_args__ = (Index("ix_export_journals_created", "bucket", "created"),)


class ExportChunk(Base):
    """An export file, stored in pieces so every API process can serve it."""

    __tablename__ = "export_chunks"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    journal_uid: Mapped[str] = mapped_column(String(24), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer(), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary())


class InvoiceTemplate(Base):
    """What a Xero invoice action raises for each record: lines, due-date rule, reference."""

    __tablename__ = "invoice_templates"
    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    uid: Mapped[str] = mapped_column(String(24), primary_key=True)
    name: Mapped[str] = mapped_column(Text())
    line_items: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc)
    due: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    reference: Mapped[str] = mapped_column(Text())
    line_amount_types: Mapped[str] = mapped_column(String(16))
    currency_code: Mapped[str | None] = mapped_column(String(3), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime())
    last_updated: Mapped[datetime] = mapped_column(DateTime())

    __table_args__ = (Index("ix_invoice_templates_name", "bucket", "name"),)
