"""Fieldsets (SPEC 8): named lists of fields for exports and reports."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fold.auth.policies import Caller
from fold.db.models import Fieldset
from fold.errors import NotFound, PermissionDenied, Problem, ValidationFailed
from fold.fields.paths import FIELD_PATH_RE
from fold.fields.service import check_resource_type, schema_for
from fold.fields.types import read_boolean
from fold.ids import is_uid, make_uri, new_uid
from fold.paging import Paging
from fold.segments import repository
from fold.segments.inputs import _string_list
from fold.timefmt import format_datetime, utcnow

# What a client may send to create one, and the fields of the fieldset Fold answers.
INPUTS = ("name", "description", "fields", "resource", "applicable_resources", "locked")
ACCEPTS = (
    *INPUTS,
    "uid",
    "uri",
    "display_value",
    "created",
    "last_updated",
    "active",
    "record_state",
    "field_display",
)
DEFAULT_NAME = "Untitled fieldset"


def field_display(session: Session, row: Fieldset) -> list[dict[str, str]]:
    """Each field with its type, from the schema of the first type the fieldset applies to."""
    types: dict[str, str] = {}
    if row.applicable_resources:
        try:
            schema = schema_for(
                session, bucket=row.bucket, resource_type=row.applicable_resources[0]
            )
            types = {name: f.type for name, f in schema.fields.items()}
        except ValidationFailed:
            types = {}
    return [{"field": f, "type": types.get(f, "string")} for f in row.fields]


def fieldset_out(session: Session, row: Fieldset) -> dict[str, Any]:
    # Deleting a fieldset removes it, so every fieldset answered is active.
    return {
        "uid": row.uid,
        "uri": make_uri(row.bucket, "fieldset", row.uid),
        "name": row.name,
        "display_value": row.name,
        "description": row.description,
        "fields": row.fields,
        "applicable_resources": row.applicable_resources,
        "field_display": field_display(session, row),
        "locked": row.locked,
        "active": True,
        "record_state": "active",
        "created": format_datetime(row.created),
        "last_updated": format_datetime(row.last_updated),
    }


def list_fieldsets(session: Session, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    caller.require("read")
    paging = Paging.read(params)
    rows = list(repository.fieldsets(session, bucket=caller.bucket))
    resource = params.get("resource")
    if resource:
        check_resource_type(str(resource), param="resource")
        rows = [r for r in rows if not r.applicable_resources or resource in r.applicable_resources]
    chosen = rows[paging.offset : paging.offset + paging.page_size]
    return {
        "fieldsets": [fieldset_out(session, r) for r in chosen],
        "errors": [],
        **paging.envelope(len(rows)),
    }


def get_fieldset(session: Session, caller: Caller, uid: str) -> dict[str, Any]:
    caller.require("read")
    return fieldset_out(session, _load(session, caller, uid))


def _load(session: Session, caller: Caller, uid: Any) -> Fieldset:
    row = (
        repository.fieldset(session, bucket=caller.bucket, uid=uid)
        if isinstance(uid, str) and is_uid(uid)
        else None
    )
    if row is None:
        raise NotFound(f"No fieldset {uid} in this bucket.", param="uid")
    return row


def create_fieldset(session: Session, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    caller.require("edit_segment")
    problems: list[Problem] = []
    name = params.get("name")
    if name is None or name == "":
        name = DEFAULT_NAME
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        problems.append(Problem("name is text of 1 to 200 characters", "name"))
    resource = params.get("resource")
    resources = _string_list(params.get("applicable_resources", resource or []))
    if resources is None:
        problems.append(
            Problem("applicable_resources is a list of resource types", "applicable_resources")
        )
        resources = []
    for index, item in enumerate(resources):
        try:
            check_resource_type(str(item))
        except ValidationFailed as exc:
            problems.append(Problem(exc.description, f"applicable_resources[{index}]"))
    fields = _string_list(params.get("fields"))
    if fields is None or not all(isinstance(f, str) and FIELD_PATH_RE.match(f) for f in fields):
        problems.append(Problem("fields is a list of field paths", "fields"))
        fields = []
    if not fields:
        if isinstance(resource, str) and not problems:
            schema = schema_for(session, bucket=caller.bucket, resource_type=resource)
            fields = list(schema.fields)
        elif not problems:
            problems.append(
                Problem("give fields, or resource to take every field of that type", "fields")
            )
    try:
        locked = read_boolean(params.get("locked", False))
    except ValueError:
        problems.append(Problem("locked is true or false", "locked"))
        locked = False
    description = params.get("description") or ""
    if not isinstance(description, str):
        problems.append(Problem("description is text", "description"))
    if problems:
        raise ValidationFailed.collect(problems)
    now = utcnow()
    row = Fieldset(
        bucket=caller.bucket,
        uid=new_uid(),
        name=str(name).strip(),
        description=str(description),
        fields=fields,
        applicable_resources=[str(r) for r in resources],
        locked=locked,
        created=now,
        last_updated=now,
    )
    session.add(row)
    session.flush()
    return fieldset_out(session, row)


def delete_fieldset(session: Session, caller: Caller, uid: Any) -> dict[str, Any]:
    caller.require("edit_segment")
    row = _load(session, caller, uid)
    if row.locked:
        raise PermissionDenied("This fieldset is locked and cannot be deleted.")
    out = fieldset_out(session, row)
    session.delete(row)
    session.flush()
    return out
