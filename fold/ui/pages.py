"""Reading pages: the bucket's segment tree, a segment with its records, a record with its
audit history, and explain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fold.api.deps import DbSession
from fold.api.routing import Router
from fold.audit.service import AuditQuery, list_entries
from fold.db.models import Segment
from fold.errors import FoldError, ValidationFailed
from fold.exports.columns import find_fieldset
from fold.fields.service import check_resource_type, schema_for
from fold.ids import make_uri
from fold.records import service as records
from fold.segments import explain, fieldsets, reads, repository, service, versions
from fold.segments.members import segment_schema, stored_types
from fold.segments.syncs import SYNCED_TYPES
from fold.settings import service as bucket_settings
from fold.timefmt import utcnow
from fold.ui.render import UiRoute, render
from fold.ui.session import UiDep, UiSession

router = Router(prefix="/ui/{bucket}", route_class=UiRoute, include_in_schema=False)
PAGE_SIZE = 25
HISTORY_SIZE = 50


@dataclass
class TreeNode:
    row: Segment
    children: list[TreeNode] = field(default_factory=list)


def tree(db: Session, bucket: str, current: str | None = None) -> dict[str, Any]:
    """Live segments as a tree (folders first), the deleted ones apart, and which folders
    start open: those on the way to the current segment."""
    rows = repository.all_segments(db, bucket=bucket, include_deleted=True)
    live = [r for r in rows if r.record_state == "active"]
    nodes = {r.uid: TreeNode(r) for r in live}
    opened: set[str] = set()
    step = nodes.get(current or "")
    while step is not None and step.row.uid not in opened:
        opened.add(step.row.uid)
        step = nodes.get(step.row.parent_uid or "")
    roots: list[TreeNode] = []
    for row in live:
        parent = nodes.get(row.parent_uid or "")
        (parent.children if parent else roots).append(nodes[row.uid])

    def order(items: list[TreeNode]) -> list[TreeNode]:
        for item in items:
            item.children = order(item.children)
        return sorted(items, key=lambda n: (n.row.segment_type != "auxiliary", n.row.name.lower()))

    return {
        "roots": order(roots),
        "deleted": [r for r in rows if r.record_state != "active"],
        "opened": opened,
    }


def page(name: str, ui: UiSession, db: Session, status: int = 200, **context: Any) -> Response:
    """A full page: the sidebar tree and the session's details around the content."""
    current = context.pop("current", None)
    return render(
        name,
        status,
        ui=ui,
        bucket=ui.caller.bucket,
        can=ui.caller.can,
        sidebar=tree(db, ui.caller.bucket, current),
        current=current,
        **context,
    )


@router.get("/")
def bucket_home(ui: UiDep, db: DbSession) -> Response:
    summary = records.summary(db, caller=ui.caller)
    return page("home.html", ui, db, types=summary["resource_types"])


@router.get("/segments/{uid}/count")
def count_fragment(ui: UiDep, db: DbSession, uid: str) -> Response:
    """A segment's count, for the sidebar (loaded after the page)."""
    row = reads.load_for_read(db, ui.caller, uid)
    counted = reads.segment_count(db, ui.caller, row)
    return render("count.html", count=counted["count"], computed_at=counted["computed_at"])


def _records_params(request: Request) -> dict[str, Any]:
    allowed = ("q", "sort", "page", "fieldset")
    return {k: v for k, v in request.query_params.items() if k in allowed and v != ""}


@router.get("/segments/{uid}")
def segment_page(request: Request, ui: UiDep, db: DbSession, uid: str) -> Response:
    row = reads.load_for_read(db, ui.caller, uid)
    params = _records_params(request)
    schema = segment_schema(db, bucket=row.bucket, resource_type=row.resource_type)
    chosen = params.get("fieldset")
    columns = list(schema.list_fields)
    if chosen:
        found = find_fieldset(db, row.bucket, chosen)
        if found is None:
            raise ValidationFailed(f"No fieldset {chosen!r} in this bucket.", param="fieldset")
        columns = [c for c in found.fields if c != "display_value"]
    labels = {name: f.label for name, f in schema.fields.items()}
    results = reads.segment_records(
        db, ui.caller, row, {**params, "page_size": PAGE_SIZE, "verbose": "true"}
    )
    counted = reads.segment_count(db, ui.caller, row)
    funnel = explain.funnel(db, ui.caller, row) if row.segment_type != "auxiliary" else None
    sets = fieldsets.list_fieldsets(
        db, ui.caller, {"page_size": 1000, "resource": row.resource_type}
    )
    return page(
        "segment.html",
        ui,
        db,
        current=row.uid,
        segment=service.segment_out(db, ui.caller, row),
        row=row,
        counted=counted,
        funnel=funnel,
        results=results,
        columns=columns,
        labels=labels,
        params=params,
        fieldsets=sets["fieldsets"],
        parent=repository.get(db, bucket=row.bucket, uid=row.parent_uid)
        if row.parent_uid
        else None,
        children=repository.live_children(db, bucket=row.bucket, uid=row.uid),
        history=versions.listing(db, row, {"page": 1, "page_size": HISTORY_SIZE}),
        today=utcnow().date().isoformat(),
        mailchimp_ready=row.resource_type in SYNCED_TYPES
        and row.segment_type != "auxiliary"
        and "mailchimp" in bucket_settings.sections_set(db, bucket=row.bucket),
    )


def _flat(record: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested objects (an address) as dotted fields, as the schema names them; a point
    stays whole."""
    out: list[tuple[str, Any]] = []
    for key, value in record.items():
        path = prefix + key
        if isinstance(value, dict) and value and not {"lat", "lng"} <= value.keys():
            out.extend(_flat(value, path + "."))
        else:
            out.append((path, value))
    return out


@router.get("/records/{resource_type}/{uid}")
def record_page(
    request: Request, ui: UiDep, db: DbSession, resource_type: str, uid: str
) -> Response:
    """A record's fields and audit history, and why it is or is not in a segment."""
    check_resource_type(resource_type)
    record = records.get(db, caller=ui.caller, resource_type=resource_type, uid=uid)
    schema = schema_for(db, bucket=ui.caller.bucket, resource_type=resource_type)
    entries, _ = list_entries(
        db,
        bucket=ui.caller.bucket,
        query=AuditQuery(limit=50, skip=0, resource_type=resource_type, record_uid=uid),
    )
    segment_uid = request.query_params.get("segment") or ""
    why = None
    why_segment = None
    if segment_uid:
        why_segment = reads.load_for_read(db, ui.caller, segment_uid)
        why = explain.for_record(db, ui.caller, why_segment, record["uri"])
    choices = [
        s
        for s in repository.all_segments(db, bucket=ui.caller.bucket)
        if s.segment_type != "auxiliary" and resource_type in stored_types(s.resource_type)
    ]
    labels = {name: f.label for name, f in schema.fields.items()}
    system = ("uid", "uri", "created", "last_updated", "record_state", "display_value")
    return page(
        "record.html",
        ui,
        db,
        current=segment_uid or None,
        record=record,
        fields=[(k, labels.get(k, k), v) for k, v in _flat(record) if k not in system],
        system={k: record.get(k) for k in system},
        entries=entries,
        why=why,
        why_segment=why_segment,
        choices=choices,
        record_uri=make_uri(ui.caller.bucket, resource_type, uid),
    )


__all__ = ["FoldError", "router"]
