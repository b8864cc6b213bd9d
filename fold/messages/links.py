"""The signed links in messages, which work without an API key: one-click unsubscribe
(RFC 8058) and acknowledgement. A link's signature covers the bucket and the one record
it names, so it can neither be forged nor turned to another contact or message."""

from __future__ import annotations

from sqlalchemy.orm import Session

from fold.config import Settings
from fold.db.models import Record
from fold.errors import NotFound, PermissionDenied
from fold.fields.service import schema_for
from fold.ids import is_uid, make_uri
from fold.records.bulk import Rewrite, update_records
from fold.settings import crypto
from fold.timefmt import format_datetime, utcnow

CONTACT_TYPES = ("person", "organisation")
REFUSED = "This link is not valid: it was changed or belongs to another address."


def _record(session: Session, bucket: str, resource_type: str, uid: str) -> Record:
    row = None
    if is_uid(uid):
        row = session.get(Record, (bucket, resource_type, uid))
    if row is None or row.record_state != "active":
        raise NotFound("The record this link was made for no longer exists.")
    return row


def unsubscribe(
    session: Session, settings: Settings, *, bucket: str, resource_type: str, uid: str, sig: str
) -> str:
    """Set `email_opt_out` on the contact the link names (audited); its display value."""
    payload = f"{bucket}/{resource_type}/{uid}"
    if resource_type not in CONTACT_TYPES or not crypto.verify(
        settings, "unsubscribe", payload, sig
    ):
        raise PermissionDenied(REFUSED)
    row = _record(session, bucket, resource_type, uid)
    if row.data.get("email_opt_out") is not True:
        update_records(
            session,
            bucket=bucket,
            user_uri=f"/{bucket}/user/unsubscribe-link/",
            message="Unsubscribed from email with the one-click link",
            schemas={
                resource_type: schema_for(session, bucket=bucket, resource_type=resource_type)
            },
            rewrites=[Rewrite(row, {**row.data, "email_opt_out": True}, row.record_state)],
        )
    return row.display_value


def check_unsubscribe(
    settings: Settings, *, bucket: str, resource_type: str, uid: str, sig: str
) -> None:
    if not crypto.verify(settings, "unsubscribe", f"{bucket}/{resource_type}/{uid}", sig):
        raise PermissionDenied(REFUSED)


def acknowledge(session: Session, settings: Settings, *, bucket: str, uid: str, sig: str) -> str:
    """Record on the message that its reader acknowledged it (once; audited)."""
    if not crypto.verify(settings, "acknowledge", f"{bucket}/{uid}", sig):
        raise PermissionDenied(REFUSED)
    row = _record(session, bucket, "message", uid)
    if not row.data.get("acknowledged"):
        update_records(
            session,
            bucket=bucket,
            user_uri=f"/{bucket}/user/acknowledgement-link/",
            message="Acknowledged with the link in the message",
            schemas={"message": schema_for(session, bucket=bucket, resource_type="message")},
            rewrites=[
                Rewrite(
                    row, {**row.data, "acknowledged": format_datetime(utcnow())}, row.record_state
                )
            ],
        )
    return make_uri(bucket, "message", uid)


def check_acknowledge(settings: Settings, *, bucket: str, uid: str, sig: str) -> None:
    if not crypto.verify(settings, "acknowledge", f"{bucket}/{uid}", sig):
        raise PermissionDenied(REFUSED)
