"""The bulk actions (SPEC 3.2 and 3.3): each checks its inputs before any job exists, and
applies itself to one batch of records at a time, saying per record what it did and how
to undo it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fold.audit.service import Change, record_writes
from fold.config import Settings
from fold.db.bulk import insert_rows
from fold.db.jsonsql import json_text
from fold.db.models import Bucket, Record
from fold.errors import ValidationFailed
from fold.fields.builtin import BUILTIN
from fold.fields.display import value_at
from fold.fields.paths import FIELD_PATH_RE, MISSING, get_path, with_path
from fold.fields.schema import TypeSchema
from fold.fields.types import read_value
from fold.ids import make_uri, new_uid, parse_uri
from fold.jobs import mailchimp, messaging, xero
from fold.jobs.work import Action, AnyRecord, Outcome, Run
from fold.outbound import http
from fold.records.bulk import Rewrite
from fold.records.clock import stamp
from fold.records.service import derived, record_out
from fold.timefmt import utcnow

SYSTEM_FIELDS = ("uid", "uri", "created", "last_updated", "record_state", "display_value")


# --- checking inputs --------------------------------------------------------------------


def require_field(params: dict[str, Any], default: str | None = None) -> str:
    path = params.get("field") or default
    if not path:
        raise ValidationFailed("This action needs a field.", param="field")
    if not isinstance(path, str) or not FIELD_PATH_RE.match(path) or path in SYSTEM_FIELDS:
        raise ValidationFailed(f"{path!r} is not a field this action can change.", param="field")
    return path


def typed_value(schema: TypeSchema, path: str, value: Any) -> Any:
    """The value read as the field's type; empty (or null) means "clear the field"."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    field_type = schema.field_type(path)
    if field_type is None:
        return None if value == "" else value
    try:
        return read_value(field_type, value)
    except ValueError as exc:
        raise ValidationFailed(
            f"{value!r} cannot be read as {field_type}: {exc}", param="value"
        ) from None


def require_text(params: dict[str, Any], what: str) -> str:
    value = params.get("value")
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(f"This action needs {what} as its value.", param="value")
    return value.strip()


# --- the actions ------------------------------------------------------------------------


def _check_tag(
    session: Session, bucket: str, rt: str, schema: TypeSchema, p: dict[str, Any], s: Settings
) -> dict[str, Any]:
    return {"field": require_field(p, "tags"), "value": require_text(p, "a tag")}


def _tags(run: Run, rows: list[AnyRecord | None], adding: bool) -> list[Outcome]:
    path, tag = run.params["field"], run.params["value"]
    out = []
    for row in rows:
        if row is None or row.record_state != "active":
            out.append(Outcome("skipped", "the record was deleted"))
            continue
        current = get_path(row.data, path)
        if current is MISSING or current is None:
            current = []
        if not isinstance(current, list):
            out.append(Outcome("failed", f"{path} is not a list"))
            continue
        if adding:
            if tag in current:
                out.append(Outcome("done", undo={"changed": False}))
                continue
            new = [*current, tag]
        else:
            if tag not in current:
                out.append(Outcome("done", undo={"changed": False}))
                continue
            new = [t for t in current if t != tag]
        run.rewrites.append(Rewrite(row, with_path(row.data, path, new), "active"))
        out.append(
            Outcome("done", undo={"changed": True, "field": path, "tag": tag, "added": adding})
        )
    run.save()
    return out


def _check_set_field(
    session: Session, bucket: str, rt: str, schema: TypeSchema, p: dict[str, Any], s: Settings
) -> dict[str, Any]:
    path = require_field(p)
    if "value" not in p:
        raise ValidationFailed("This action needs a value (empty clears the field).", param="value")
    return {"field": path, "value": typed_value(schema, path, p["value"])}


def _set_on(run: Run, row: AnyRecord, path: str, value: Any) -> Outcome:
    before = get_path(row.data, path)
    undo = {
        "field": path,
        "had": before is not MISSING,
        "prev": None if before is MISSING else before,
    }
    run.rewrites.append(Rewrite(row, with_path(row.data, path, value), row.record_state))
    return Outcome("done", undo={"changed": True, "set": undo})


def _set_field(run: Run, rows: list[AnyRecord | None]) -> list[Outcome]:
    out = []
    for row in rows:
        if row is None or row.record_state != "active":
            out.append(Outcome("skipped", "the record was deleted"))
            continue
        out.append(_set_on(run, row, run.params["field"], run.params["value"]))
    run.save()
    return out


def _check_status(
    session: Session, bucket: str, rt: str, schema: TypeSchema, p: dict[str, Any], s: Settings
) -> dict[str, Any]:
    path = require_field(p, schema.status_field or "status")
    value = require_text(p, "the new status")
    definition = schema.fields.get(path)
    if definition is not None and definition.choices and value not in definition.choices:
        allowed = ", ".join(definition.choices)
        raise ValidationFailed(
            f"{value!r} is not a status of {rt}; use one of {allowed}.", param="value"
        )
    return {"field": path, "value": value}


def _check_membership_field(
    session: Session, bucket: str, rt: str, schema: TypeSchema, p: dict[str, Any], s: Settings
) -> dict[str, Any]:
    path = require_field(p)
    if "value" not in p:
        raise ValidationFailed("This action needs a value (empty clears the field).", param="value")
    return {"field": path, "value": typed_value(BUILTIN["membership"], path, p["value"])}


def latest_memberships(session: Session, bucket: str, contacts: list[str]) -> dict[str, Record]:
    """Each contact's most recent membership: latest start date, then latest created."""
    contact = json_text(Record.data, "contact")
    rows = session.scalars(
        select(Record).where(
            Record.bucket == bucket,
            Record.resource_type == "membership",
            Record.record_state == "active",
            contact.in_(contacts),
        )
    ).all()
    best: dict[str, Record] = {}
    for row in rows:
        key = str(row.data.get("contact"))
        rank = (str(row.data.get("start_date") or ""), row.created, row.uid)
        current = best.get(key)
        if current is None or rank > (
            str(current.data.get("start_date") or ""),
            current.created,
            current.uid,
        ):
            best[key] = row
    return best


def _set_on_membership(run: Run, rows: list[Record | None]) -> list[Outcome]:
    uris = [run.record_uri(r) for r in rows if r is not None]
    latest = latest_memberships(run.session, run.bucket, uris)
    out = []
    for row in rows:
        if row is None or row.record_state != "active":
            out.append(Outcome("skipped", "the record was deleted"))
            continue
        membership = latest.get(run.record_uri(row))
        if membership is None:
            out.append(Outcome("failed", "the contact has no membership"))
            continue
        outcome = _set_on(run, membership, run.params["field"], run.params["value"])
        assert outcome.undo is not None
        outcome.undo["record"] = ["membership", membership.uid]
        out.append(outcome)
    run.save()
    return out


def _check_group(
    session: Session, bucket: str, rt: str, schema: TypeSchema, p: dict[str, Any], s: Settings
) -> dict[str, Any]:
    uri = parse_uri(p.get("value"))
    if uri is None or uri.bucket != bucket or uri.resource_type != "group":
        raise ValidationFailed(
            "The value must be the URI of a group in this bucket.", param="value"
        )
    group = session.get(Record, (bucket, "group", uri.uid))
    if group is None or group.record_state != "active":
        raise ValidationFailed(f"No group {uri} in this bucket.", param="value")
    return {"value": str(uri)}


def _join_group(run: Run, rows: list[Record | None]) -> list[Outcome]:
    group = run.params["value"]
    live = [r for r in rows if r is not None and r.record_state == "active"]
    contact = json_text(Record.data, "contact")
    existing = set(
        run.session.scalars(
            select(contact).where(
                Record.bucket == run.bucket,
                Record.resource_type == "group_member",
                Record.record_state == "active",
                json_text(Record.data, "group") == group,
                contact.in_([run.record_uri(r) for r in live]),
            )
        ).all()
    )
    now = utcnow()
    inserts, changes, out = [], [], []
    schema = run.schemas["group_member"]
    for row in rows:
        if row is None or row.record_state != "active":
            out.append(Outcome("skipped", "the record was deleted"))
            continue
        uri = run.record_uri(row)
        if uri in existing:
            out.append(Outcome("done", undo={"changed": False}))
            continue
        uid = new_uid()
        data = {"group": group, "contact": uri, "joined": now.date().isoformat()}
        inserts.append(
            {
                "bucket": run.bucket, "resource_type": "group_member", "uid": uid, "data": data,
                "created": now, "last_updated": now, "record_state": "active",
                **derived(schema, data, uid),
            }
        )  # fmt: skip
        changes.append(Change("group_member", uid, None, data))
        existing.add(uri)
        out.append(Outcome("done", undo={"changed": True, "created": ["group_member", uid]}))
    if inserts:
        version = stamp(run.session, run.bucket)
        for insert in inserts:
            insert["version"] = version
        insert_rows(run.session, Record.__table__, inserts)  # type: ignore[arg-type]
    record_writes(
        run.session,
        bucket=run.bucket,
        user_uri=run.user_uri,
        message=run.description,
        changes=changes,
    )
    return out


def _check_url(
    session: Session, bucket: str, rt: str, schema: TypeSchema, p: dict[str, Any], s: Settings
) -> dict[str, Any]:
    url = require_text(p, "a URL")
    try:
        http.check_url(url, allow_private=s.allow_private_webhooks)
    except http.Refused as exc:
        raise ValidationFailed(f"The webhook URL is refused: {exc}.", param="value") from None
    return {"value": url}


def _policy(run: Run) -> http.Policy:
    return http.Policy(
        allow_private=run.settings.allow_private_webhooks,
        timeout=run.settings.webhook_timeout,
        concurrency=run.settings.webhook_concurrency,
    )


def _send(
    run: Run, rows: list[Record | None], build: Callable[[Record], dict[str, Any]]
) -> list[Outcome]:
    from concurrent.futures import ThreadPoolExecutor

    policy = _policy(run)
    live = [(i, r) for i, r in enumerate(rows) if r is not None and r.record_state == "active"]
    out = [Outcome("skipped", "the record was deleted") for _ in rows]
    with ThreadPoolExecutor(max_workers=policy.concurrency) as pool:
        results = pool.map(
            lambda pair: http.post(
                run.params["value"], policy=policy, client=run.http_client, **build(pair[1])
            ),
            live,
        )
        for (index, _), result in zip(live, results, strict=True):
            out[index] = Outcome("done") if result.ok else Outcome("failed", result.error)
    return out


def _webhook(run: Run, rows: list[Record | None]) -> list[Outcome]:
    def form(row: Record) -> dict[str, Any]:
        schema = run.schemas[row.resource_type]
        data = {
            "uri": run.record_uri(row),
            "uid": row.uid,
            "resource_type": row.resource_type,
            "display_value": row.display_value,
            "job": make_uri(run.bucket, "sheep_event", run.job_uid),
        }
        for path in schema.list_fields:
            value = value_at(row.data, path)
            if value is not None:
                data[path] = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        return {"data": data}

    return _send(run, rows, form)


def _json_webhook(run: Run, rows: list[Record | None]) -> list[Outcome]:
    bucket = run.session.get(Bucket, run.bucket)
    secret = bucket.webhook_secret if bucket else None

    def body(row: Record) -> dict[str, Any]:
        content = json.dumps(record_out(row), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Fold-Job": make_uri(run.bucket, "sheep_event", run.job_uid),
        }
        if secret:
            headers["X-Fold-Signature"] = http.signature(secret, content)
        return {"content": content, "headers": headers}

    return _send(run, rows, body)


def _check_none(
    session: Session, bucket: str, rt: str, schema: TypeSchema, p: dict[str, Any], s: Settings
) -> dict[str, Any]:
    return {}


def _replace(run: Run, rows: list[AnyRecord | None]) -> list[Outcome]:
    out = []
    for row in rows:
        if row is None or row.record_state != "active":
            out.append(Outcome("skipped", "the record was deleted"))
            continue
        extra = derived(run.schemas[row.resource_type], row.data, row.uid)
        if any(getattr(row, k) != v for k, v in extra.items()):
            run.rewrites.append(Rewrite(row, row.data, "active"))
        out.append(Outcome("done"))
    run.save()
    return out


def _delete(run: Run, rows: list[AnyRecord | None]) -> list[Outcome]:
    out = []
    for row in rows:
        if row is None or row.record_state != "active":
            out.append(Outcome("skipped", "the record was already deleted"))
            continue
        run.rewrites.append(Rewrite(row, row.data, "deleted"))
        out.append(Outcome("done", undo={"changed": True, "deleted": True}))
    run.save()
    return out


def _undo(run: Run, rows: list[AnyRecord | None]) -> list[Outcome]:
    """Revert what the original job did to each record, from the undo notes it kept."""
    out = []
    for row, note in zip(rows, run.undo_infos, strict=True):
        if not note or not note.get("changed"):
            out.append(Outcome("skipped", "the job changed nothing here"))
        elif row is None:
            out.append(Outcome("failed", "the record no longer exists"))
        elif "deleted" in note:
            run.rewrites.append(Rewrite(row, row.data, "active"))
            out.append(Outcome("done"))
        elif "tag" in note:
            current = get_path(row.data, note["field"])
            tags = current if isinstance(current, list) else []
            new = [t for t in tags if t != note["tag"]] if note["added"] else [*tags, note["tag"]]
            run.rewrites.append(
                Rewrite(row, with_path(row.data, note["field"], new), row.record_state)
            )
            out.append(Outcome("done"))
        elif "set" in note:
            target: AnyRecord = row
            if "record" in note:
                resource_type, uid = note["record"]
                target = run.session.get(Record, (run.bucket, resource_type, uid))  # type: ignore[assignment]
                if target is None:
                    out.append(Outcome("failed", "the changed record no longer exists"))
                    continue
            change = note["set"]
            value = change["prev"] if change["had"] else MISSING
            run.rewrites.append(
                Rewrite(target, with_path(target.data, change["field"], value), target.record_state)
            )
            out.append(Outcome("done"))
        elif "created" in note:
            resource_type, uid = note["created"]
            made = run.session.get(Record, (run.bucket, resource_type, uid))
            if made is not None and made.record_state == "active":
                run.rewrites.append(Rewrite(made, made.data, "deleted"))
            out.append(Outcome("done"))
        else:
            out.append(Outcome("skipped", "nothing to undo"))
    run.save()
    return out


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("add_tag", _check_tag, lambda run, rows: _tags(run, rows, True), light=True),
        Action("remove_tag", _check_tag, lambda run, rows: _tags(run, rows, False), light=True),
        Action("set-single-field", _check_set_field, _set_field, light=True),
        Action(
            "set-single-field-on-last-membership",
            _check_membership_field,
            _set_on_membership,
            contacts_only=True,
        ),
        Action("change-status", _check_status, _set_field, light=True),
        Action("join-group", _check_group, _join_group, contacts_only=True),
        Action("send-webhook", _check_url, _webhook, undoable=False, writes_records=False),
        Action(
            "send-json-webhook", _check_url, _json_webhook, undoable=False, writes_records=False
        ),
        Action(
            "debug", messaging.check_debug, messaging.debug, undoable=False, writes_records=False
        ),
        *messaging.ACTIONS,
        *xero.ACTIONS,
    )
}
# Started by their own endpoints (SPEC 3.3), not by `action`.
INTERNAL: dict[str, Action] = {
    "replace": Action("replace", _check_none, _replace, undoable=False, light=True),
    "delete": Action("delete", _check_none, _delete, light=True),
    "undo": Action("undo", _check_none, _undo, undoable=False, light=True),
    "sync_mailchimp": Action(
        "sync_mailchimp",
        _check_none,
        mailchimp.upsert,
        undoable=False,
        finish=mailchimp.finish,
        failure=mailchimp.SyncFailed,
    ),
}


def action_for(name: str) -> Action:
    """A job's action, whether started by `action` or by its own endpoint."""
    return ACTIONS.get(name) or INTERNAL[name]
