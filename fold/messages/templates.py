"""Message templates: create, read, change, delete, list and preview for one record.

A template is checked when saved: every part must parse (400 naming the part otherwise),
and its channel decides which parts it may have."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fold.auth.policies import Caller
from fold.config import Settings
from fold.db.models import MessageTemplate, Record
from fold.errors import NotFound, Problem, ValidationFailed
from fold.fields.service import schema_for
from fold.ids import is_uid, make_uri, new_uid, parse_uri
from fold.messages import compose, render
from fold.paging import Paging
from fold.records import contacts
from fold.timefmt import format_datetime, utcnow

FIELDS = ("name", "channel", "subject", "text_body", "html_body")
# What a client may send: the fields, and those of the template Fold answers (posted back).
ACCEPTS = (
    *FIELDS,
    "uid",
    "uri",
    "resource_type",
    "display_value",
    "created",
    "last_updated",
)
KNOWN = {*FIELDS, "uid", "uri", "created", "last_updated", "resource_type", "display_value"}
MAX_PART = 100_000


def template_out(row: MessageTemplate) -> dict[str, Any]:
    return {
        "uid": row.uid,
        "uri": make_uri(row.bucket, "message_template", row.uid),
        "resource_type": "message_template",
        "display_value": row.name,
        "name": row.name,
        "channel": row.channel,
        "subject": row.subject,
        "text_body": row.text_body,
        "html_body": row.html_body,
        "created": format_datetime(row.created),
        "last_updated": format_datetime(row.last_updated),
    }


def find(session: Session, bucket: str, uid: Any) -> MessageTemplate | None:
    """The bucket's template `uid`, or None (another bucket's template is not found)."""
    if not isinstance(uid, str) or not is_uid(uid.strip()):
        return None
    return session.get(MessageTemplate, (bucket, uid.strip()))


def load(session: Session, caller: Caller, uid: str) -> MessageTemplate:
    caller.require("read")
    row = find(session, caller.bucket, uid)
    if row is None:
        raise NotFound(f"No message template {uid} in this bucket.", param="uid")
    return row


def _clean(values: dict[str, Any]) -> dict[str, str]:
    problems = [
        Problem(f"{key!r} is not a field of a message template; use {', '.join(FIELDS)}.", key)
        for key in values
        if key not in KNOWN
    ]
    clean: dict[str, str] = {}
    for key in FIELDS:
        raw = values.get(key)
        if raw is None:
            raw = ""
        if not isinstance(raw, str):
            problems.append(Problem(f"{key} must be text.", key))
            continue
        if len(raw) > MAX_PART:
            problems.append(Problem(f"{key} is longer than {MAX_PART} characters.", key))
        clean[key] = raw
    if problems:
        raise ValidationFailed.collect(problems)
    clean["name"] = clean["name"].strip()
    clean["channel"] = clean["channel"].strip()
    if not clean["name"]:
        problems.append(Problem("A template needs a name.", "name"))
    channel = clean["channel"]
    if channel not in compose.CHANNELS:
        problems.append(
            Problem(f"channel must be one of {', '.join(compose.CHANNELS)}.", "channel")
        )
    if channel == "email" and not clean["subject"].strip():
        problems.append(Problem("An email template needs a subject.", "subject"))
    if channel == "sms" and clean["html_body"]:
        problems.append(Problem("An SMS template has a text body only.", "html_body"))
    if channel in compose.CHANNELS and not (
        clean["text_body"].strip() or clean["html_body"].strip()
    ):
        problems.append(Problem("A template needs a text_body or an html_body.", "text_body"))
    for key, as_html in (("subject", False), ("text_body", False), ("html_body", True)):
        error = render.check(clean[key], as_html=as_html)
        if error:
            problems.append(Problem(f"{key} is not a valid template: {error}", key))
    if problems:
        raise ValidationFailed.collect(problems)
    return clean


def create(session: Session, *, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    caller.require("write_templates")
    clean = _clean(params)
    now = utcnow()
    row = MessageTemplate(
        bucket=caller.bucket, uid=new_uid(), created=now, last_updated=now, **clean
    )
    session.add(row)
    session.flush()
    return template_out(row)


def change(
    session: Session, *, caller: Caller, uid: str, params: dict[str, Any], replace: bool
) -> dict[str, Any]:
    """PUT (`replace`) sets every field; PATCH only those sent."""
    caller.require("write_templates")
    row = load(session, caller, uid)
    current = {} if replace else {k: getattr(row, k) for k in FIELDS}
    if replace and "channel" not in params:
        current["channel"] = row.channel
    clean = _clean({**current, **params})
    for key, value in clean.items():
        setattr(row, key, value)
    row.last_updated = utcnow()
    session.flush()
    return template_out(row)


def delete(session: Session, *, caller: Caller, uid: str) -> dict[str, Any]:
    caller.require("write_templates")
    row = load(session, caller, uid)
    out = template_out(row)
    session.delete(row)
    session.flush()
    return out


def listing(session: Session, *, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    caller.require("read")
    unknown = set(params) - {"page", "page_size", "channel"}
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationFailed(f"{name!r} is not a parameter of this list.", param=name)
    paging = Paging.read(params)
    where = [MessageTemplate.bucket == caller.bucket]
    if params.get("channel"):
        where.append(MessageTemplate.channel == params["channel"])
    total = session.scalar(select(func.count()).select_from(MessageTemplate).where(*where)) or 0
    rows = session.scalars(
        select(MessageTemplate)
        .where(*where)
        .order_by(MessageTemplate.name, MessageTemplate.uid)
        .offset(paging.offset)
        .limit(paging.page_size)
    ).all()
    return {"templates": [template_out(r) for r in rows], **paging.envelope(total)}


def preview(
    session: Session, settings: Settings, *, caller: Caller, uid: str, params: dict[str, Any]
) -> dict[str, Any]:
    """The template rendered for one record (`uri`), as it would be sent: nothing is sent
    and nothing written."""
    row = load(session, caller, uid)
    target = parse_uri(params.get("uri"))
    if target is None or target.bucket != caller.bucket:
        raise ValidationFailed("Give the URI of a record of this bucket as 'uri'.", param="uri")
    record = session.get(Record, (caller.bucket, target.resource_type, target.uid))
    if record is None or record.record_state != "active":
        raise NotFound(f"No record {target} in this bucket.", param="uri")
    schemas = {
        record.resource_type: schema_for(
            session, bucket=caller.bucket, resource_type=record.resource_type
        )
    }
    found = contacts.linked(session, caller.bucket, schemas, [record])
    contact = contacts.contact_of(schemas, record, found)
    return describe_send(settings, row, record, caller.bucket, contact)


def describe_send(
    settings: Settings,
    row: MessageTemplate,
    record: Record,
    bucket: str,
    contact: Record | str | None = None,
) -> dict[str, Any]:
    """What sending `row` about `record` would do: the rendered parts, or why it would not.
    The message goes to `contact`, the record itself unless it is a linked record's contact
    (`records.contacts`), or a sentence saying why the record has none."""
    out: dict[str, Any] = {
        "template": row.uid,
        "channel": row.channel,
        "uri": make_uri(bucket, record.resource_type, record.uid),
        "to": None,
        "would": "send",
        "reason": None,
        "subject": None,
        "text": None,
        "html": None,
    }
    contact = record if contact is None else contact
    if isinstance(contact, str):
        out["would"], out["reason"] = "fail", contact
        return out
    links = {
        "unsubscribe_url": compose.unsubscribe_url(
            settings, bucket, contact.resource_type, contact.uid
        ),
        "acknowledge_url": f"{settings.public_url}/messages/v1/{bucket}/acknowledge/(preview)",
    }
    out["to"] = compose.address(contact, row.channel)
    if compose.opted_out(contact, row.channel):
        out["would"], out["reason"] = "skip", f"the contact opted out of {row.channel}"
    elif out["to"] is None:
        out["would"], out["reason"] = "fail", compose.missing_reason(row.channel)
    try:
        parts = compose.compose(row, compose.context(contact, bucket, links, about=record))
    except render.RenderError as exc:
        out["would"], out["reason"] = "fail", f"the template cannot be rendered: {exc}"
        return out
    out.update(subject=parts.subject, text=parts.text, html=parts.html or None)
    return out
