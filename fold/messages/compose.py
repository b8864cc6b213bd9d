"""Turning a template and a contact into a message: the render context, the recipient's
address or number, and the rendered parts."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from fold.config import Settings
from fold.db.models import MessageTemplate, Record
from fold.ids import make_uri
from fold.messages import render
from fold.settings import crypto
from fold.settings.sections import EMAIL_RE

CHANNELS = ("email", "sms", "in_app")
OPT_OUT = {"email": "email_opt_out", "sms": "sms_opt_out"}
PHONE_FIELDS = ("mobile", "telephone")


@dataclass(frozen=True)
class Composed:
    subject: str
    text: str
    html: str


def message_uid(job_uid: str, resource_type: str, record_uid: str) -> str:
    """The uid of the message a job writes for one record: the same every time the job
    asks, so a resumed job finds what an interrupted one already did."""
    digest = hashlib.sha256(f"{job_uid}:{resource_type}:{record_uid}".encode()).hexdigest()
    return job_uid[:8] + digest[:16]


def unsubscribe_url(settings: Settings, bucket: str, resource_type: str, uid: str) -> str:
    payload = f"{bucket}/{resource_type}/{uid}"
    sig = crypto.sign(settings, "unsubscribe", payload)
    return f"{settings.public_url}/messages/v1/{bucket}/unsubscribe/{resource_type}/{uid}/{sig}"


def acknowledge_url(settings: Settings, bucket: str, message: str) -> str:
    sig = crypto.sign(settings, "acknowledge", f"{bucket}/{message}")
    return f"{settings.public_url}/messages/v1/{bucket}/acknowledge/{message}/{sig}"


def context(
    record: Record, bucket: str, links: dict[str, str] | None = None, about: Record | None = None
) -> dict[str, Any]:
    """What a template sees: the contact's fields at the top level and under `contact`,
    the bucket's name, and the message's links. A message about a linked record (a
    membership, for its contact) also sees that record under `record` and its type's name
    (`membership`)."""
    contact = _fields(record, bucket)
    values = {**contact, "contact": contact, "bucket": bucket, **(links or {})}
    if about is not None and about is not record:
        values["record"] = values[about.resource_type] = _fields(about, bucket)
    return values


def _fields(record: Record, bucket: str) -> dict[str, Any]:
    return {
        **record.data,
        "uid": record.uid,
        "uri": make_uri(bucket, record.resource_type, record.uid),
        "resource_type": record.resource_type,
        "display_value": record.display_value,
    }


def address(record: Record, channel: str) -> str | None:
    """The record's email address or phone number for the channel; None when it has none."""
    if channel == "email":
        value = record.data.get("email")
        if isinstance(value, str) and EMAIL_RE.match(value.strip()):
            return value.strip()
        return None
    if channel == "sms":
        for name in PHONE_FIELDS:
            value = record.data.get(name)
            if isinstance(value, str | int) and str(value).strip():
                return str(value).strip()
        return None
    return make_uri(record.bucket, record.resource_type, record.uid)


def opted_out(record: Record, channel: str) -> bool:
    name = OPT_OUT.get(channel)
    return bool(name and record.data.get(name) is True)


def compose(template: MessageTemplate, values: dict[str, Any]) -> Composed:
    """The template rendered; RenderError when it cannot be for these values."""
    subject = " ".join(render.render(template.subject, values, as_html=False).split())
    text = render.render(template.text_body, values, as_html=False)
    if template.channel == "sms":
        return Composed(subject, text.strip(), "")
    html = render.render(template.html_body, values, as_html=True)
    if not html and text:
        html = render.html_from_text(text)
    if not text and html:
        text = render.text_from_html(html)
    return Composed(subject, text, html)


def missing_reason(channel: str) -> str:
    if channel == "email":
        return "the contact has no usable email address"
    return "the contact has no mobile or telephone number"


def is_email(value: str) -> bool:
    return bool(EMAIL_RE.match(value)) and not re.search(r"[\r\n,;]", value)
