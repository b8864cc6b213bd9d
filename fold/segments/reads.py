"""Reading segments and their records: lists, trees, config, count, lookup, pages,
preview and explain (exports, CSV included, are in fold.exports)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fold.auth.policies import Caller
from fold.db.models import Record, Segment
from fold.errors import Problem, ValidationFailed
from fold.fields.display import value_at
from fold.fields.schema import TypeSchema
from fold.ids import make_uri, parse_uri
from fold.paging import Paging
from fold.params import read_flag
from fold.records.service import record_out
from fold.rules.compile import compose, segment_uris
from fold.rules.context import SegmentDef
from fold.rules.filter import SYSTEM_KINDS, Node, leaf
from fold.rules.sentence import describe_segment
from fold.segments import repository, service
from fold.segments.index_or_sql import count_and_page, count_selected
from fold.segments.inputs import VIEW_CONTEXTS, read_definition
from fold.segments.members import make_context, segment_filter, segment_schema
from fold.segments.schemas import Checked, Definition
from fold.timefmt import format_datetime, utcnow


def listing(
    session: Session,
    caller: Caller,
    params: dict[str, Any],
    *,
    active_only: bool,
    name: str | None = None,
    view_context: str | None = None,
    deleted_param: bool = False,
) -> dict[str, Any]:
    """The segments envelope: `segments`, `page`, `page_size`, `total`, `pages`. With
    `deleted_param`, `include_deleted` in `params` adds deleted segments."""
    caller.require("read")
    if view_context is not None:
        check_view_context(view_context)
    include_deleted = deleted_param and read_flag(params, "include_deleted")
    paging = Paging.read(params)
    rows = repository.all_segments(session, bucket=caller.bucket, include_deleted=include_deleted)
    if active_only:
        rows = [r for r in rows if r.active]
    if name is not None:
        term = name.strip().lower()
        rows = [r for r in rows if term in r.name.lower()]
    if view_context is not None:
        rows = [r for r in rows if view_context in r.view_context]
    chosen = rows[paging.offset : paging.offset + paging.page_size]
    return {
        "segments": [service.segment_out(session, caller, r) for r in chosen],
        **paging.envelope(len(rows)),
    }


def check_view_context(value: str) -> str:
    if value not in VIEW_CONTEXTS:
        raise ValidationFailed(
            f"{value!r} is not a view context; use one of {', '.join(VIEW_CONTEXTS)}.",
            param="view_context",
        )
    return value


def trees(session: Session, caller: Caller) -> dict[str, Any]:
    caller.require("read")
    rows = repository.all_segments(session, bucket=caller.bucket)
    nodes = {r.uid: {**service.segment_out(session, caller, r), "children": []} for r in rows}
    roots: list[dict[str, Any]] = []
    for row in rows:
        parent = nodes.get(row.parent_uid or "")
        (parent["children"] if parent else roots).append(nodes[row.uid])
    return {"segments": roots}


def config(session: Session, caller: Caller, row: Segment) -> dict[str, Any]:
    schema = segment_schema(session, bucket=row.bucket, resource_type=row.resource_type)
    # The reference types can_bypass_gdpr as an array of booleans (docs/decisions.md).
    ui = {**service.user_interface(caller, row), "can_bypass_gdpr": [caller.can("gdpr_bypass")]}
    return {
        "mapping": {
            "collection": row.resource_type,
            "name": schema.name,
            "name_singular": schema.name_singular,
            "prefix": schema.prefix,
            "fields": [
                {"field": f.name, "label": f.label, "form_type": f.form_type, "style": f.type}
                for f in schema.fields.values()
            ],
            "field_list": list(schema.list_fields),
            "search_fields": list(schema.search_fields),
            "search_placeholder": schema.search_placeholder,
            "sort_by": list(schema.sort_by),
            "unique_field": schema.unique_field,
            "contact_field": schema.contact_field,
            "contact_search_fields": ["first_name", "last_name", "name", "email"],
            "join_people": row.resource_type in ("organisation", "contact"),
            "join_orgs": row.resource_type in ("person", "contact"),
            "use_mapreduce": False,
        },
        "resource_type": row.resource_type,
        "segment": make_uri(row.bucket, "segment", row.uid),
        "segment_type": row.segment_type,
        "view_context": row.view_context,
        "user_groups": [],
        "user_groups_for_display": [],
        "user_interface": ui,
    }


def _segment_names(session: Session, bucket: str, rules: list[dict[str, Any]]) -> dict[str, str]:
    names = {}
    for uri in segment_uris(rules):
        parsed = parse_uri(uri)
        other = repository.get(session, bucket=bucket, uid=parsed.uid) if parsed else None
        names[uri] = other.name if other else uri
    return names


def sentence(session: Session, row: Segment, schema: TypeSchema) -> str:
    """What the segment holds, in words: its type, rules, lists and parent."""
    parent = (
        repository.get(session, bucket=row.bucket, uid=row.parent_uid) if row.parent_uid else None
    )
    sizes = repository.list_sizes(session, bucket=row.bucket, uid=row.uid)
    return describe_segment(
        schema,
        segment_type=row.segment_type,
        rules=row.rules,
        include=sizes.get("include", 0),
        exclude=sizes.get("exclude", 0),
        parent=parent.name if parent else None,
        segment_names=_segment_names(session, row.bucket, row.rules),
    )


def segment_count(session: Session, caller: Caller, row: Segment) -> dict[str, Any]:
    schema = segment_schema(session, bucket=row.bucket, resource_type=row.resource_type)
    total = count_selected(
        session,
        bucket=row.bucket,
        resource_type=row.resource_type,
        node=segment_filter(session, row),
    )
    return {
        "count": total,
        "description": row.description or sentence(session, row, schema),
        "segment": make_uri(row.bucket, "segment", row.uid),
        "computed_at": format_datetime(utcnow()),
    }


def summary(record: Record, schema: TypeSchema) -> dict[str, Any]:
    out = {
        "uri": make_uri(record.bucket, record.resource_type, record.uid),
        "uid": record.uid,
        "resource_type": record.resource_type,
        "display_value": record.display_value,
    }
    for field in schema.list_fields:
        out[field] = value_at(record.data, field)
    return out


def read_sort(params: dict[str, Any], schema: TypeSchema) -> str | None:
    """`sort=field` or `-field`: a field of the type's schema (custom fields included) or a
    system field; a name that is neither would sort by nothing, so it is refused."""
    sort = params.get("sort")
    if sort in (None, ""):
        return None
    path = sort.strip().lstrip("-") if isinstance(sort, str) else ""
    if path not in schema.fields and path not in SYSTEM_KINDS:
        sortable = ", ".join([*SYSTEM_KINDS, *schema.fields][:40])
        raise ValidationFailed(
            f"{sort!r} is not a field to sort by; use one of {sortable} (prefix - for "
            "descending). Declare a custom field to sort by a field no schema has.",
            param="sort",
        )
    return ("-" if sort.strip().startswith("-") else "") + path


def results_page(
    session: Session, row_bucket: str, resource_type: str, node: Node, params: dict[str, Any]
) -> dict[str, Any]:
    paging = Paging.read(params)
    schema = segment_schema(session, bucket=row_bucket, resource_type=resource_type)
    q = params.get("q")
    if q is not None and not isinstance(q, str):
        raise ValidationFailed("q is a search term", param="q")
    total, rows = count_and_page(
        session,
        bucket=row_bucket,
        resource_type=resource_type,
        node=node,
        q=q,
        schema=schema,
        sort=read_sort(params, schema),
        paging=paging,
    )
    verbose = read_flag(params, "verbose")
    results = [record_out(r) if verbose else summary(r, schema) for r in rows]
    return {
        "results": results,
        **paging.envelope(total),
        "computed_at": format_datetime(utcnow()),
    }


def segment_records(
    session: Session, caller: Caller, row: Segment, params: dict[str, Any]
) -> dict[str, Any]:
    out = results_page(session, row.bucket, row.resource_type, segment_filter(session, row), params)
    return {**out, "segment": make_uri(row.bucket, "segment", row.uid)}


def lookup(session: Session, row: Segment, q: str | None) -> list[dict[str, Any]]:
    schema = segment_schema(session, bucket=row.bucket, resource_type=row.resource_type)
    _, rows = count_and_page(
        session,
        bucket=row.bucket,
        resource_type=row.resource_type,
        node=segment_filter(session, row),
        q=q,
        schema=schema,
        sort=None,
        paging=Paging(1, 10),
    )
    out = []
    for r in rows:
        uri = make_uri(r.bucket, r.resource_type, r.uid)
        out.append(
            {
                "id": r.uid,
                "uri": uri,
                "value": uri,
                "label": r.display_value,
                "text": r.display_value,
                "display_value": r.display_value,
            }
        )
    return out


def definition_filter(
    session: Session, caller: Caller, params: dict[str, Any]
) -> tuple[Definition, Checked, list[Problem]]:
    problems: list[Problem] = []
    d = read_definition(params, Definition(), problems)
    checked = service.check(session, caller, d, problems, None)
    return d, checked, problems


def validate(session: Session, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    caller.require("read")
    _, checked, problems = definition_filter(session, caller, params)
    return {
        "valid": not problems,
        "errors": [p.as_dict() for p in problems],
        "rules": {"match": "all", "conditions": checked.rules},
    }


def preview(session: Session, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    caller.require("read")
    # An unsaved definition needs no name to be looked at.
    params = {"name": "Preview", **params}
    d, checked, problems = definition_filter(session, caller, params)
    if problems:
        raise ValidationFailed.collect(problems)
    ctx = make_context(session, bucket=caller.bucket, resource_type=d.resource_type)
    node = unsaved_filter(session, caller, d, checked, ctx)
    schema = ctx.schema
    out = results_page(session, caller.bucket, d.resource_type, node, params)
    return {
        "count": out["total"],
        "description": d.description or preview_sentence(session, caller, d, checked, schema),
        **out,
    }


def preview_sentence(
    session: Session, caller: Caller, d: Definition, checked: Checked, schema: TypeSchema
) -> str:
    parent = (
        repository.get(session, bucket=caller.bucket, uid=checked.parent_uid)
        if checked.parent_uid
        else None
    )
    return describe_segment(
        schema,
        segment_type=d.segment_type,
        rules=checked.rules,
        include=len(checked.include),
        exclude=len(checked.exclude),
        parent=parent.name if parent else None,
        segment_names=_segment_names(session, caller.bucket, checked.rules),
    )


def unsaved_filter(
    session: Session, caller: Caller, d: Definition, checked: Checked, ctx: Any
) -> Node:
    """The membership of a definition not yet saved: its lists go in as uid sets."""
    unsaved = SegmentDef(
        uid="",
        resource_type=d.resource_type,
        segment_type=d.segment_type,
        rules=checked.rules,
        parent_uid=checked.parent_uid,
    )
    include = leaf("uid", "in", "string", checked.include) if checked.include else None
    exclude = leaf("uid", "in", "string", checked.exclude) if checked.exclude else None
    return compose(
        unsaved,
        ctx,
        include=include or {"const": False},
        exclude=exclude or {"const": False},
    ).node


def load_for_read(session: Session, caller: Caller, uid: str) -> Segment:
    caller.require("read")
    return service.load(session, caller, uid)
