"""The messaging actions (SPEC 3.2): templated email, SMS and in-app messages, drafts,
email to a fixed address, and `debug` with a template. Every send or draft leaves a
`message` record; docs/jobs.md says how a resumed job never sends twice.

Each message a job writes has a uid derived from the job and the record, so a batch done
again after its worker was killed finds the messages it already wrote. A message is
written as `sending` and committed (`Run.checkpoint`) before it goes out, a few at a
time; one still `sending` when its batch is done again becomes `unknown`, never re-sent."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from fold.audit.service import Change, record_writes
from fold.config import Settings
from fold.db.bulk import insert_rows
from fold.db.models import MessageTemplate, Record
from fold.errors import ValidationFailed
from fold.fields.display import value_at
from fold.fields.schema import TypeSchema
from fold.ids import make_uri
from fold.jobs.work import Action, Outcome, Run
from fold.messages import compose, outbox, render, sms, smtp
from fold.messages.templates import describe_send, find
from fold.records import contacts
from fold.records.bulk import Rewrite
from fold.records.clock import stamp
from fold.records.service import derived
from fold.settings import service as bucket_settings
from fold.timefmt import format_datetime, utcnow

IN_FLIGHT = 10  # messages committed as `sending` before they go out, at most, per worker
PREVIEWS = 3  # records `debug` renders a template for
OUTBOX_SENDER = "fold@localhost"
ANOTHER = "the contact gets this job's message for another of its records"
INTERRUPTED = (
    "the worker stopped while this message was being sent; it may have been delivered, "
    "so it is not sent again"
)


# --- checking inputs --------------------------------------------------------------------


def _template(session: Session, bucket: str, value: Any, channel: str) -> MessageTemplate:
    row = find(session, bucket, value)
    if row is None:
        raise ValidationFailed(
            f"The value must be the uid of a message template of this bucket; {value!r} is not.",
            param="value",
        )
    if row.channel != channel:
        raise ValidationFailed(
            f"Template {row.uid} is an {row.channel} template; this action needs a {channel} one.",
            param="value",
        )
    return row


def _check_template(channel: str, mode: str, acknowledge: bool = False) -> Any:
    def check(
        session: Session, bucket: str, rt: str, schema: TypeSchema, p: dict[str, Any], s: Settings
    ) -> dict[str, Any]:
        row = _template(session, bucket, p.get("value"), channel)
        return {
            "value": row.uid,
            "channel": channel,
            "mode": mode,
            "request_acknowledgement": acknowledge,
        }

    return check


def _check_fixed(
    session: Session, bucket: str, rt: str, schema: TypeSchema, p: dict[str, Any], s: Settings
) -> dict[str, Any]:
    value = p.get("value")
    if not isinstance(value, str) or not compose.is_email(value.strip()):
        raise ValidationFailed("The value must be one email address.", param="value")
    return {"value": value.strip(), "channel": "email", "mode": "fixed"}


def check_debug(
    session: Session, bucket: str, rt: str, schema: TypeSchema, p: dict[str, Any], s: Settings
) -> dict[str, Any]:
    checked = {"field": p.get("field"), "value": p.get("value")}
    row = find(session, bucket, p.get("value"))
    if row is not None:
        checked["template"] = row.uid
    return checked


# --- where messages go ------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    status: str  # sent, outbox, failed, unknown
    provider_id: str = ""
    error: str = ""


@dataclass
class Pending:
    index: int
    row: Record
    uid: str
    data: dict[str, Any]
    parts: compose.Composed
    unsubscribe_url: str | None


class Sender(Protocol):
    def deliver(self, message: Pending) -> Delivery: ...

    def close(self) -> None: ...


class EmailSender:
    """SMTP when the bucket has it set, else the local outbox."""

    def __init__(self, run: Run, config: dict[str, Any] | None) -> None:
        self.run = run
        self.to_outbox = config is None
        self.mailer = smtp.Mailer(
            config or {"from_address": OUTBOX_SENDER, "host": "outbox"},
            attempts=run.settings.smtp_attempts,
            backoff=run.settings.smtp_backoff,
        )

    def deliver(self, message: Pending) -> Delivery:
        headers = (("X-Fold-Message", make_uri(self.run.bucket, "message", message.uid)),)
        built = self.mailer.build(
            smtp.Email(
                to=message.data["to"],
                subject=message.parts.subject,
                text=message.parts.text,
                html=message.parts.html,
                message_uid=message.uid,
                unsubscribe_url=message.unsubscribe_url,
                headers=headers,
            )
        )
        if self.to_outbox:
            outbox.write_email(self.run.settings.data_dir, self.run.bucket, message.uid, built)
            return Delivery("outbox", str(built["Message-ID"]))
        result = self.mailer.send(built, message.data["to"])
        return Delivery(result.state, result.message_id, result.reason)

    def close(self) -> None:
        self.mailer.close()


class SmsSender:
    """The bucket's SMS provider when set, else the local outbox."""

    def __init__(self, run: Run, config: dict[str, Any] | None) -> None:
        self.run = run
        self.config = config

    def deliver(self, message: Pending) -> Delivery:
        to, body = message.data["to"], message.parts.text
        if self.config is None:
            sms_file = {"to": to, "body": body, "segments": message.data["sms_segments"]}
            outbox.write_sms(self.run.settings.data_dir, self.run.bucket, message.uid, sms_file)
            return Delivery("outbox")
        result = sms.send(
            self.config,
            to=to,
            body=body,
            allow_private=self.run.settings.allow_private_webhooks,
            timeout=self.run.settings.webhook_timeout,
            client=self.run.http_client,
        )
        return Delivery(result.state, result.provider_id, result.reason)

    def close(self) -> None:
        return None


class Refusing:
    """Settings that cannot be read: every message fails with why, none goes elsewhere."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def deliver(self, message: Pending) -> Delivery:
        return Delivery("failed", error=self.reason)

    def close(self) -> None:
        return None


def _sender(run: Run, channel: str) -> Sender:
    section = "smtp" if channel == "email" else "sms"
    try:
        config = bucket_settings.load(run.session, run.settings, bucket=run.bucket, section=section)
    except bucket_settings.Unreadable as exc:
        return Refusing(str(exc))
    return EmailSender(run, config) if channel == "email" else SmsSender(run, config)


# --- message records --------------------------------------------------------------------


def _insert(run: Run, messages: list[tuple[str, dict[str, Any]]]) -> None:
    if not messages:
        return
    now = utcnow()
    version = stamp(run.session, run.bucket)
    schema = run.schemas["message"]
    rows = [
        {
            "bucket": run.bucket, "resource_type": "message", "uid": uid, "data": data,
            "created": now, "last_updated": now, "record_state": "active", "version": version,
            **derived(schema, data, uid),
        }
        for uid, data in messages
    ]  # fmt: skip
    insert_rows(run.session, Record.__table__, rows)  # type: ignore[arg-type]
    record_writes(
        run.session,
        bucket=run.bucket,
        user_uri=run.user_uri,
        message=run.description,
        changes=[Change("message", uid, None, data) for uid, data in messages],
    )


def _rewrite(run: Run, uid: str, before: dict[str, Any], after: dict[str, Any]) -> None:
    row = Record(bucket=run.bucket, resource_type="message", uid=uid, data=before)
    row.record_state = "active"
    run.rewrites.append(Rewrite(row, after, "active"))


def _targets(run: Run, rows: list[Record | None]) -> list[Record | str | None]:
    """Whom each record's message goes to: a templated message to its contact (itself, or
    the contact a linked record names), or why it has none; a fixed address's about the
    record itself."""
    if run.params["mode"] == "fixed":
        return list(rows)
    found = contacts.linked(run.session, run.bucket, run.schemas, rows)
    return [None if r is None else contacts.contact_of(run.schemas, r, found) for r in rows]


def _existing(run: Run, uids: list[str]) -> dict[str, Record]:
    if not uids:
        return {}
    rows = run.session.scalars(
        select(Record).where(
            Record.bucket == run.bucket, Record.resource_type == "message", Record.uid.in_(uids)
        )
    ).all()
    return {r.uid: r for r in rows}


def _resumed(run: Run, message: Record) -> Outcome:
    """What an earlier, interrupted run of this batch did for the record."""
    status = message.data.get("status")
    if status == "sending":
        _rewrite(
            run,
            message.uid,
            message.data,
            {**message.data, "status": "unknown", "error": INTERRUPTED},
        )
        return Outcome("failed", INTERRUPTED)
    if status in ("sent", "outbox", "draft"):
        return Outcome("done")
    reason = str(message.data.get("error") or status)
    return Outcome("skipped" if status == "skipped" else "failed", reason)


def _fixed_parts(run: Run, row: Record) -> compose.Composed:
    schema = run.schemas[row.resource_type]
    lines = [f"{row.display_value}", make_uri(run.bucket, row.resource_type, row.uid), ""]
    for path in schema.list_fields:
        value = value_at(row.data, path)
        if value not in (None, "", []):
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            lines.append(f"{path}: {shown}")
    text = "\n".join(lines) + "\n"
    subject = " ".join(f"{run.description}: {row.display_value}".split())[:250]
    return compose.Composed(subject, text, render.html_from_text(text))


def _with_acknowledgement(
    parts: compose.Composed, template: MessageTemplate, url: str
) -> compose.Composed:
    """The acknowledgement link added to a body whose template does not place it."""
    if any(render.uses(s, "acknowledge_url") for s in (template.text_body, template.html_body)):
        return parts
    text = f"{parts.text.rstrip()}\n\nPlease acknowledge this message: {url}\n"
    html = parts.html
    if html:
        html += f'\n<p><a href="{url}">Please acknowledge this message</a></p>'
    return compose.Composed(parts.subject, text, html)


def _chunks(items: list[Pending], size: int) -> Iterator[list[Pending]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _plan(
    run: Run, row: Record, uid: str, template: MessageTemplate | None, region: str, about: Record
) -> tuple[dict[str, Any], compose.Composed | None, str | None, str]:
    """The message record for one contact (`row`) about one of the job's records (`about`:
    the contact itself, or a record that links to it), its parts, its unsubscribe link, and
    its fate: `deliver`, or the final status (`draft`, `sent` for in-app, `skipped`,
    `failed`)."""
    params, channel = run.params, str(run.params["channel"])
    contact = make_uri(run.bucket, row.resource_type, row.uid)
    fixed = params["mode"] == "fixed"
    to = params["value"] if fixed else compose.address(row, channel)
    data: dict[str, Any] = {
        "contact": contact,
        **({} if about is row else {"about": run.record_uri(about)}),
        "channel": channel,
        "to": to,
        "template": template.uid if template else None,
        "job": make_uri(run.bucket, "sheep_event", run.job_uid),
        "request_acknowledgement": bool(params.get("request_acknowledgement")),
        "status": "sending",
    }
    if not fixed and compose.opted_out(row, channel):
        return (
            {**data, "status": "skipped", "error": f"the contact opted out of {channel}"},
            None,
            None,
            "skipped",
        )
    if to is None:
        return (
            {**data, "status": "failed", "error": compose.missing_reason(channel)},
            None,
            None,
            "failed",
        )
    if channel == "sms":
        try:
            data["to"] = sms.e164(str(to), region)
        except ValueError as exc:
            return {**data, "status": "failed", "error": str(exc)}, None, None, "failed"
    unsubscribe = None
    if channel == "email" and not fixed:
        unsubscribe = compose.unsubscribe_url(run.settings, run.bucket, row.resource_type, row.uid)
    if template is None:
        parts = _fixed_parts(run, about)
    else:
        links = {"unsubscribe_url": unsubscribe or ""}
        acknowledge = compose.acknowledge_url(run.settings, run.bucket, uid)
        if data["request_acknowledgement"]:
            links["acknowledge_url"] = acknowledge
        try:
            parts = compose.compose(template, compose.context(row, run.bucket, links, about))
        except render.RenderError as exc:
            error = f"the template cannot be rendered for this contact: {exc}"
            return {**data, "status": "failed", "error": error}, None, None, "failed"
        if data["request_acknowledgement"]:
            parts = _with_acknowledgement(parts, template, acknowledge)
    data.update(subject=parts.subject or None, body=parts.text)
    if channel != "sms":
        data["html"] = parts.html or None
    else:
        data["sms_segments"] = sms.segments(parts.text)
    if params["mode"] == "draft":
        return {**data, "status": "draft"}, parts, unsubscribe, "draft"
    if channel == "in_app":
        return {**data, "status": "sent", "sent": format_datetime(utcnow())}, parts, None, "sent"
    return data, parts, unsubscribe, "deliver"


def _send(run: Run, rows: list[Record | None]) -> list[Outcome]:
    channel = str(run.params["channel"])
    template = None
    if run.params["mode"] != "fixed":
        template = find(run.session, run.bucket, run.params["value"])
        if template is None:
            return [Outcome("failed", "the message template was deleted") for _ in rows]
    targets = _targets(run, rows)
    uids = [
        compose.message_uid(run.job_uid, t.resource_type, t.uid) if isinstance(t, Record) else ""
        for t in targets
    ]
    existing = _existing(run, [u for u in uids if u])
    out: list[Outcome] = [Outcome("skipped", "the record was deleted") for _ in rows]
    finished: list[tuple[str, dict[str, Any]]] = []
    pending: list[Pending] = []
    planned: set[str] = set()
    region = "GB"
    if channel == "sms":
        try:
            config = bucket_settings.load(
                run.session, run.settings, bucket=run.bucket, section="sms"
            )
        except bucket_settings.Unreadable:
            config = None  # the sender says so for each message
        region = str((config or {}).get("default_region") or "GB")
    for index, (row, target, uid) in enumerate(zip(rows, targets, uids, strict=True)):
        if row is None or target is None or row.record_state != "active":
            continue
        if isinstance(target, str):
            out[index] = Outcome("failed", target)
            continue
        about = None if target is row else run.record_uri(row)
        if uid in planned or (uid in existing and existing[uid].data.get("about") != about):
            out[index] = Outcome("skipped", ANOTHER)
            continue
        planned.add(uid)
        if uid in existing:
            out[index] = _resumed(run, existing[uid])
            continue
        data, parts, unsubscribe, fate = _plan(run, target, uid, template, region, row)
        if fate == "deliver":
            assert parts is not None
            pending.append(Pending(index, target, uid, data, parts, unsubscribe))
            continue
        finished.append((uid, data))
        state = {"skipped": "skipped", "failed": "failed"}.get(fate, "done")
        out[index] = Outcome(state, str(data.get("error") or ""))
    _insert(run, finished)
    if not pending:
        run.save()
        return out
    sender = _sender(run, channel)
    try:
        for chunk in _chunks(pending, IN_FLIGHT):
            _insert(run, [(p.uid, p.data) for p in chunk])
            run.save()
            run.checkpoint()  # `sending` is on disk before anything goes out
            for message in chunk:
                result = sender.deliver(message)
                after = {**message.data, "status": result.status}
                if result.provider_id:
                    after["provider_id"] = result.provider_id
                if result.error:
                    after["error"] = result.error
                if result.status in ("sent", "outbox"):
                    after["sent"] = format_datetime(utcnow())
                    out[message.index] = Outcome("done")
                else:
                    out[message.index] = Outcome("failed", result.error)
                _rewrite(run, message.uid, message.data, after)
    finally:
        sender.close()
    run.save()
    return out


def debug(run: Run, rows: list[Record | None]) -> list[Outcome]:
    """Touch nothing; with a template, count what would be sent, skipped and failed, and
    keep the first few renderings in the job's params (`preview`)."""
    template = find(run.session, run.bucket, run.params.get("template"))
    out = []
    previews: list[dict[str, Any]] = []
    found = contacts.linked(run.session, run.bucket, run.schemas, rows) if template else {}
    for row in rows:
        if row is None or row.record_state != "active":
            out.append(Outcome("skipped", "the record was deleted"))
            continue
        if template is None:
            out.append(Outcome("done"))
            continue
        contact = contacts.contact_of(run.schemas, row, found)
        would = describe_send(run.settings, template, row, run.bucket, contact)
        if "preview" not in run.params and len(previews) < PREVIEWS:
            previews.append(would)
        if would["would"] == "send":
            out.append(Outcome("done"))
        else:
            state = "skipped" if would["would"] == "skip" else "failed"
            out.append(Outcome(state, f"would not send: {would['reason']}"))
    if previews:
        run.notes["preview"] = previews
    return out


ACTIONS = (
    Action(
        "send-templated-email",
        _check_template("email", "send"),
        _send,
        undoable=False,
        for_contacts=True,
    ),
    Action(
        "send-templated-email-request-acknowledgement",
        _check_template("email", "send", acknowledge=True),
        _send,
        undoable=False,
        for_contacts=True,
    ),
    Action(
        "draft-templated-email",
        _check_template("email", "draft"),
        _send,
        undoable=False,
        for_contacts=True,
    ),
    Action("send-email-to-fixed-address", _check_fixed, _send, undoable=False),
    Action(
        "send-templated-in-app-message",
        _check_template("in_app", "send"),
        _send,
        undoable=False,
        for_contacts=True,
    ),
    Action(
        "send-templated-in-app-message-request-acknowledgement",
        _check_template("in_app", "send", acknowledge=True),
        _send,
        undoable=False,
        for_contacts=True,
    ),
    Action(
        "send-templated-sms",
        _check_template("sms", "send"),
        _send,
        undoable=False,
        for_contacts=True,
    ),
)
