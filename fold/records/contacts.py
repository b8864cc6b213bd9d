"""The contact behind a record: the record itself when it is a person or an organisation,
else the contact its type's contact field links to (a membership's or a payment's
`contact`). What acts for a contact (Xero invoices, Mailchimp syncs, messages, a
template's preview) reads them here, a batch's at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from fold.db.models import Record
from fold.fields.schema import TypeSchema
from fold.ids import CONTACT_TYPES, Uri, make_uri, parse_uri


def linked(
    session: Session,
    bucket: str,
    schemas: Mapping[str, TypeSchema],
    rows: Sequence[Record | None],
    *,
    lock: bool = False,
) -> dict[str, Record]:
    """The contact records the rows link to, by URI; this bucket's only. With `lock`, they
    are held until the transaction ends (for a caller that rewrites them)."""
    wanted: dict[str, tuple[str, str]] = {}
    for row in rows:
        if row is None or row.resource_type in CONTACT_TYPES:
            continue
        uri = _link(schemas, row)
        if uri is not None and uri.bucket == bucket and uri.resource_type in CONTACT_TYPES:
            wanted[str(uri)] = (uri.resource_type, uri.uid)
    found: dict[str, Record] = {}
    for resource_type in sorted({t for t, _ in wanted.values()}):
        uids = sorted(u for t, u in wanted.values() if t == resource_type)
        query = select(Record).where(
            Record.bucket == bucket, Record.resource_type == resource_type, Record.uid.in_(uids)
        )
        for contact in session.scalars(query.with_for_update() if lock else query):
            found[make_uri(bucket, contact.resource_type, contact.uid)] = contact
    return found


def contact_of(
    schemas: Mapping[str, TypeSchema], row: Record, found: Mapping[str, Record]
) -> Record | str:
    """The row's contact (from what `linked` found), or why it has none: a sentence for a
    job's errors."""
    if row.resource_type in CONTACT_TYPES:
        return row
    uri = _link(schemas, row)
    if uri is None:
        return "the record names no contact"
    contact = found.get(str(uri))
    if contact is None or contact.record_state != "active":
        return f"its contact {uri} does not exist or was deleted"
    return contact


def has_contacts(schema: TypeSchema) -> bool:
    """Whether records of the type are contacts or link to one."""
    return schema.resource_type in CONTACT_TYPES or bool(schema.contact_field)


def _link(schemas: Mapping[str, TypeSchema], row: Record) -> Uri | None:
    schema = schemas.get(row.resource_type)
    field_name = schema.contact_field if schema is not None else None
    return parse_uri(row.data.get(field_name)) if field_name else None
