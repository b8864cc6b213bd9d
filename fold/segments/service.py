"""Creating, changing, deleting and reading segments (SPEC 2.1 to 2.5)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fold.audit.service import Change, record_writes
from fold.auth.policies import Caller
from fold.db.models import Segment
from fold.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    Problem,
    SystemSegmentProtected,
    ValidationFailed,
)
from fold.ids import is_uid, make_uri, new_uid, parse_uri
from fold.records import repository as records
from fold.rules.compile import normalise, rules_object
from fold.rules.sentence import describe
from fold.segments import repository, versions
from fold.segments import syncs as mailchimp
from fold.segments.inputs import (
    DEFAULT_VIEW,
    FIELDS,
    read_definition,
)
from fold.segments.members import make_context, segment_schema, stored_types
from fold.segments.schemas import Checked, Definition
from fold.timefmt import format_datetime, utcnow

# What a segment audit entry compares: every field a client sets, and the state.
AUDITED = (*FIELDS, "record_state")


UNTITLED = "Untitled segment"


def etag(row: Segment) -> str:
    return f'"{row.uid}-{row.version}"'


def user_interface(caller: Caller, row: Segment | None = None) -> dict[str, Any]:
    system = bool(row and row.system_segment)
    return {
        "can_create_segment": caller.can("create_segment"),
        "can_edit_segment": caller.can("edit_segment") and not system,
        "can_delete_segment": caller.can("delete_segment") and not system,
        "can_restore_segment": caller.can("restore_segment"),
        "policy_name": caller.policy,
    }


def list_uris(session: Session, row: Segment, kind: str) -> list[str]:
    """A segment's include or exclude list as record URIs, in the order given."""
    uids = repository.list_uids(session, bucket=row.bucket, uid=row.uid, kind=kind)
    types = stored_types(row.resource_type)
    if len(types) == 1:
        return [make_uri(row.bucket, types[0], u) for u in uids]
    found = records_by_uid(session, row.bucket, types, uids)
    return [make_uri(row.bucket, found.get(u, types[0]), u) for u in uids]


def segment_out(session: Session, caller: Caller, row: Segment) -> dict[str, Any]:
    return {
        "uid": row.uid,
        "uri": make_uri(row.bucket, "segment", row.uid),
        "name": row.name,
        "display_value": row.name,
        "description": row.description,
        "segment_type": row.segment_type,
        "resource_type": row.resource_type,
        "view_context": row.view_context,
        "parent_segment": make_uri(row.bucket, "segment", row.parent_uid)
        if row.parent_uid
        else None,
        "active": row.active,
        "rules": rules_object(row.rules),
        "uris_include": list_uris(session, row, "include"),
        "uris_exclude": list_uris(session, row, "exclude"),
        "system_segment": row.system_segment,
        "tags": row.tags,
        "mailchimp_sync": row.mailchimp_sync,
        "mailchimp_last_sync": mailchimp.last_sync(session, row),
        "legacy_uid": row.legacy_uid,
        "created": format_datetime(row.created),
        "last_updated": format_datetime(row.last_updated),
        "record_state": row.record_state,
        "user_interface": user_interface(caller, row),
    }


def records_by_uid(
    session: Session, bucket: str, types: tuple[str, ...], uids: list[str]
) -> dict[str, str]:
    found: dict[str, str] = {}
    for resource_type in types:
        rows = records.by_uids(session, bucket=bucket, resource_type=resource_type, uids=uids)
        found.update({uid: resource_type for uid in rows})
    return found


def audit_view(out: dict[str, Any]) -> dict[str, Any]:
    return {k: out[k] for k in AUDITED}


def load(session: Session, caller: Caller, uid: str, *, deleted_ok: bool = False) -> Segment:
    row = repository.get(session, bucket=caller.bucket, uid=uid) if is_uid(uid) else None
    if row is None or (row.record_state != "active" and not deleted_ok):
        raise NotFound(f"No segment {uid} in this bucket.")
    return row


def definition_of(session: Session, row: Segment) -> Definition:
    return Definition(
        name=row.name,
        description=row.description,
        segment_type=row.segment_type,
        view_context=list(row.view_context),
        parent_segment=make_uri(row.bucket, "segment", row.parent_uid) if row.parent_uid else None,
        active=row.active,
        rules=row.rules,
        uris_include=list_uris(session, row, "include"),
        uris_exclude=list_uris(session, row, "exclude"),
        resource_type=row.resource_type,
        system_segment=row.system_segment,
        tags=list(row.tags),
        mailchimp_sync=row.mailchimp_sync,
    )


def check(
    session: Session, caller: Caller, d: Definition, problems: list[Problem], self_uid: str | None
) -> Checked:
    """Every rule of SPEC 2.1 to 2.4 that a definition must meet; all problems at once."""

    def fail(description: str, param: str) -> None:
        problems.append(Problem(description, param))

    if not d.resource_type:
        fail("a segment needs a resource_type", "resource_type")
    kind = d.segment_type
    has_rules = bool(d.rules) and d.rules != {"match": "all", "conditions": []}
    if has_rules and kind in ("static", "auxiliary"):
        fail(f"a {kind} segment has no rules; use a dynamic or hybrid segment for rules", "rules")
    for name in ("uris_include", "uris_exclude"):
        if getattr(d, name) and kind in ("dynamic", "auxiliary"):
            fail(f"a {kind} segment has no {name}; use a static or hybrid segment for lists", name)
    if d.mailchimp_sync and d.resource_type and d.resource_type not in mailchimp.SYNCED_TYPES:
        fail(
            f"mailchimp_sync needs contacts; {d.resource_type} records are not "
            f"(use {', '.join(mailchimp.SYNCED_TYPES)})",
            "mailchimp_sync",
        )
    rules: list[dict[str, Any]] = []
    include: list[str] = []
    exclude: list[str] = []
    parent_uid = None
    if d.resource_type:
        types = stored_types(d.resource_type)
        for name, target in (("uris_include", include), ("uris_exclude", exclude)):
            for index, uri in enumerate(getattr(d, name)):
                parsed = parse_uri(uri)
                if parsed is None or parsed.bucket != caller.bucket:
                    fail(f"{uri!r} is not a record URI of this bucket", f"{name}[{index}]")
                elif parsed.resource_type not in types:
                    fail(f"{uri} is not a {d.resource_type} record", f"{name}[{index}]")
                else:
                    target.append(parsed.uid)
        if kind in ("dynamic", "hybrid"):
            ctx = make_context(
                session, bucket=caller.bucket, resource_type=d.resource_type, self_uid=self_uid
            )
            rules, rule_problems = normalise(d.rules, ctx)
            problems.extend(rule_problems)
        parent_uid = check_parent(session, caller, d, problems, self_uid)
        if not d.name:
            d.name = default_name(session, caller.bucket, d.resource_type, rules)
    return Checked(d=d, rules=rules, include=include, exclude=exclude, parent_uid=parent_uid)


def default_name(session: Session, bucket: str, resource_type: str, rules: list[Any]) -> str:
    """A segment sent without a name is named by its rules' sentence (SPEC leaves it open)."""
    if not rules:
        return UNTITLED
    schema = segment_schema(session, bucket=bucket, resource_type=resource_type)
    text = describe(schema, rules)
    return text if len(text) <= 200 else text[:199] + "…"


def check_parent(
    session: Session, caller: Caller, d: Definition, problems: list[Problem], self_uid: str | None
) -> str | None:
    if d.parent_segment is None:
        return None
    parsed = parse_uri(d.parent_segment)
    assert parsed is not None
    if parsed.bucket != caller.bucket:
        problems.append(Problem("the parent segment belongs to another bucket", "parent_segment"))
        return None
    parent = repository.get(session, bucket=caller.bucket, uid=parsed.uid)
    if parent is None:
        problems.append(Problem(f"no segment {d.parent_segment} in this bucket", "parent_segment"))
        return None
    if parent.record_state != "active":
        problems.append(Problem("the parent segment is deleted", "parent_segment"))
        return None
    if parent.segment_type != "auxiliary" and parent.resource_type != d.resource_type:
        problems.append(
            Problem(
                f"the parent holds {parent.resource_type} records; a child refines its parent "
                "and must hold the same type (or sit in an auxiliary folder)",
                "parent_segment",
            )
        )
    seen = set()
    node: Segment | None = parent
    while node is not None:
        if node.uid == self_uid or node.uid in seen:
            problems.append(
                Problem("the parent would make the hierarchy a cycle", "parent_segment")
            )
            return None
        seen.add(node.uid)
        node = (
            repository.get(session, bucket=caller.bucket, uid=node.parent_uid)
            if node.parent_uid
            else None
        )
    return parent.uid


def _apply(row: Segment, checked: Checked) -> None:
    d = checked.d
    row.name = d.name
    row.description = d.description
    row.segment_type = d.segment_type
    row.resource_type = d.resource_type
    row.view_context = d.view_context or [DEFAULT_VIEW.get(d.resource_type, "crm")]
    row.parent_uid = checked.parent_uid
    row.active = d.active
    row.rules = checked.rules
    row.system_segment = d.system_segment
    row.tags = d.tags
    row.mailchimp_sync = d.mailchimp_sync


def create(
    session: Session, *, caller: Caller, params: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    caller.require("create_segment")
    problems: list[Problem] = []
    d = read_definition(params, Definition(), problems)
    if d.system_segment:
        caller.require("system_segment")
    checked = check(session, caller, d, problems, None)
    if problems:
        raise ValidationFailed.collect(problems)
    now = utcnow()
    row = Segment(
        bucket=caller.bucket,
        uid=new_uid(),
        record_state="active",
        version=1,
        created=now,
        last_updated=now,
        legacy_uid=None,
    )
    _apply(row, checked)
    session.add(row)
    session.flush()
    repository.replace_lists(
        session, bucket=caller.bucket, uid=row.uid, include=checked.include, exclude=checked.exclude
    )
    out = segment_out(session, caller, row)
    _audit(session, caller, row, None, out, "Segment created")
    versions.record(session, caller=caller, row=row, out=out, action="create")
    return out, etag(row)


def _audit(
    session: Session,
    caller: Caller,
    row: Segment,
    prev: dict[str, Any] | None,
    new: dict[str, Any],
    message: str,
) -> None:
    record_writes(
        session,
        bucket=caller.bucket,
        user_uri=caller.user_uri,
        message=message,
        changes=[Change("segment", row.uid, audit_view(prev) if prev else None, audit_view(new))],
    )


def update(
    session: Session,
    *,
    caller: Caller,
    uid: str,
    params: dict[str, Any],
    partial: bool,
    if_match: str | None,
    reverting: int | None = None,
) -> tuple[dict[str, Any], str]:
    """PUT (`partial` false) or PATCH; `reverting` names the version a revert restores."""
    caller.require("edit_segment")
    row = load(session, caller, uid)
    if row.system_segment:
        raise SystemSegmentProtected("System segments cannot be changed through the API.")
    if if_match is not None and if_match.strip() not in ("*", etag(row)):
        raise PreconditionFailed(
            f"The segment changed since you read it (its ETag is now {etag(row)}); read it again.",
            param="If-Match",
        )
    before = segment_out(session, caller, row)
    problems: list[Problem] = []
    base = definition_of(session, row) if partial else Definition(resource_type=row.resource_type)
    d = read_definition(params, base, problems)
    if d.system_segment:
        problems.append(Problem("only an administrator creates system segments", "system_segment"))
    checked = check(session, caller, d, problems, row.uid)
    if d.resource_type != row.resource_type:
        for child in repository.live_children(session, bucket=caller.bucket, uid=row.uid):
            if child.resource_type != d.resource_type and d.segment_type != "auxiliary":
                problems.append(
                    Problem(
                        f"child segment {child.name!r} holds {child.resource_type} records",
                        "resource_type",
                    )
                )
    if problems:
        raise ValidationFailed.collect(problems)
    _apply(row, checked)
    row.version += 1
    row.last_updated = utcnow()
    session.flush()
    repository.replace_lists(
        session, bucket=caller.bucket, uid=row.uid, include=checked.include, exclude=checked.exclude
    )
    out = segment_out(session, caller, row)
    if reverting is None:
        _audit(session, caller, row, before, out, "Segment changed")
        action = "change" if partial else "replace"
    else:
        _audit(session, caller, row, before, out, f"Segment reverted to version {reverting}")
        action = "revert"
    versions.record(session, caller=caller, row=row, out=out, action=action)
    return out, etag(row)


def delete(
    session: Session, *, caller: Caller, uid: str, cascade: bool, at: datetime | None = None
) -> dict[str, Any]:
    """Soft delete; a cascade stamps every segment it takes with one time, `at`, so that a
    cascading restore brings back exactly those."""
    caller.require("delete_segment")
    at = at or utcnow()
    row = load(session, caller, uid)
    if row.system_segment:
        raise SystemSegmentProtected("System segments cannot be deleted through the API.")
    children = repository.live_children(session, bucket=caller.bucket, uid=row.uid)
    if children and not cascade:
        names = ", ".join(repr(c.name) for c in children[:5])
        raise Conflict(
            f"The segment has {len(children)} live child segment(s) ({names}); delete them "
            "first or send cascade=true.",
            param="cascade",
        )
    for child in children:
        delete(session, caller=caller, uid=child.uid, cascade=True, at=at)
    return _set_state(session, caller, row, "deleted", "Segment deleted", at)


def _set_state(
    session: Session, caller: Caller, row: Segment, state: str, message: str, at: datetime
) -> dict[str, Any]:
    action = "delete" if state == "deleted" else "restore"
    before = segment_out(session, caller, row)
    row.record_state = state
    row.version += 1
    row.last_updated = at
    session.flush()
    out = segment_out(session, caller, row)
    _audit(session, caller, row, before, out, message)
    versions.record(session, caller=caller, row=row, out=out, action=action)
    return out


def restore(session: Session, *, caller: Caller, uid: str, cascade: bool = False) -> dict[str, Any]:
    """Undo a delete; `cascade` also brings back the children that the same delete took."""
    caller.require("restore_segment")
    row = load(session, caller, uid, deleted_ok=True)
    if row.record_state == "active":
        return segment_out(session, caller, row)
    if row.parent_uid:
        parent = repository.get(session, bucket=caller.bucket, uid=row.parent_uid)
        if parent is None or parent.record_state != "active":
            raise Conflict("Restore the parent segment first.", param="parent_segment")
    deleted_at = row.last_updated
    out = _set_state(session, caller, row, "active", "Segment restored", utcnow())
    if cascade:
        taken = repository.children_deleted_at(
            session, bucket=caller.bucket, uid=row.uid, at=deleted_at
        )
        for child in taken:
            restore(session, caller=caller, uid=child.uid, cascade=True)
    return out


def get(session: Session, *, caller: Caller, uid: str) -> tuple[dict[str, Any], str]:
    caller.require("read")
    row = load(session, caller, uid)
    return segment_out(session, caller, row), etag(row)


def revert(
    session: Session, *, caller: Caller, uid: str, number: int, if_match: str | None
) -> tuple[dict[str, Any], str]:
    """A new version whose definition is version `number`'s (its state stays)."""
    caller.require("edit_segment")
    version = versions.get(session, load(session, caller, uid), number)
    return update(
        session,
        caller=caller,
        uid=uid,
        params=versions.revert_params(version),
        partial=False,
        if_match=if_match,
        reverting=number,
    )
