"""Changing pages: the rule builder (create and edit), delete with its cascade
confirmation, restore. Each form carries the session's CSRF token, and each write goes
through the same service call as the API, which refuses what the policy does not allow."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fold.api.deps import DbSession
from fold.api.routing import Router
from fold.auth.sessions import CSRF_FIELD
from fold.db.models import Segment
from fold.errors import FoldError, Problem, ValidationFailed
from fold.ids import RESOURCE_TYPES, make_uri
from fold.segments import repository, service
from fold.segments.inputs import VIEW_CONTEXTS
from fold.ui.pages import page
from fold.ui.render import UiRoute
from fold.ui.session import UiDep, UiSession, checked_form, redirect

router = Router(prefix="/ui/{bucket}", route_class=UiRoute, include_in_schema=False)
SEGMENT_TYPES = ("dynamic", "static", "hybrid", "auxiliary")


def _lines(value: Any) -> list[str]:
    text = "\n".join(value) if isinstance(value, list) else str(value or "")
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


def definition_params(form: dict[str, Any]) -> dict[str, Any]:
    """The builder's form as the definition the segment service reads."""
    rules_text = str(form.get("rules") or "[]")
    try:
        rules = json.loads(rules_text)
    except json.JSONDecodeError:
        raise ValidationFailed("The rules are not valid JSON.", param="rules") from None
    params: dict[str, Any] = {
        "name": str(form.get("name") or ""),
        "description": str(form.get("description") or ""),
        "segment_type": str(form.get("segment_type") or "dynamic"),
        "resource_type": str(form.get("resource_type") or ""),
        "parent_segment": str(form.get("parent_segment") or "") or None,
        "active": "true" if form.get("active") else "false",
        "mailchimp_sync": "true" if form.get("mailchimp_sync") else "false",
        "rules": rules,
        "uris_include": _lines(form.get("uris_include")),
        "uris_exclude": _lines(form.get("uris_exclude")),
    }
    if form.get("view_context"):
        params["view_context"] = str(form["view_context"])
    return params


def _builder(
    ui: UiSession,
    db: Session,
    *,
    segment: dict[str, Any],
    row: Segment | None,
    problems: list[dict[str, Any]] | None = None,
    status: int = 200,
    etag: str = "",
) -> Response:
    parents = [
        s
        for s in repository.all_segments(db, bucket=ui.caller.bucket)
        if row is None or s.uid != row.uid
    ]
    others = [
        {"uri": make_uri(s.bucket, "segment", s.uid), "name": s.name, "type": s.resource_type}
        for s in parents
        if s.segment_type != "auxiliary"
    ]
    return page(
        "builder.html",
        ui,
        db,
        status,
        current=row.uid if row else None,
        segment=segment,
        row=row,
        problems=problems or [],
        segment_types=SEGMENT_TYPES,
        resource_types=RESOURCE_TYPES,
        view_contexts=VIEW_CONTEXTS,
        parents=parents,
        builder_data={
            "bucket": ui.caller.bucket,
            "rules": _rules_list(segment.get("rules")),
            "segments": others,
        },
        etag=etag,
    )


def _rules_list(rules: Any) -> list[Any]:
    """Rules as the builder's rows: a stored segment's `{match, conditions}` or a list."""
    if isinstance(rules, dict):
        conditions = rules.get("conditions", [])
        return conditions if isinstance(conditions, list) else []
    return rules if isinstance(rules, list) else []


def _problems(error: FoldError) -> list[dict[str, Any]]:
    listed = getattr(error, "problems", None) or []
    if listed:
        return [p.as_dict() for p in listed if isinstance(p, Problem)]
    return [{"description": error.description, "param": error.param}]


@router.get("/new")
def new_segment(request: Request, ui: UiDep, db: DbSession) -> Response:
    ui.caller.require("create_segment")
    q = request.query_params
    parent = q.get("parent") or ""
    segment: dict[str, Any] = {
        "segment_type": q.get("segment_type") or "dynamic",
        "resource_type": q.get("resource_type") or "person",
        "parent_segment": make_uri(ui.caller.bucket, "segment", parent) if parent else None,
        "active": True,
        "rules": [],
    }
    return _builder(ui, db, segment=segment, row=None)


@router.post("/new")
async def create_segment(request: Request, ui: UiDep, db: DbSession) -> Response:
    form = await checked_form(request, ui)
    try:
        params = definition_params(form)
        out, _ = service.create(db, caller=ui.caller, params=params)
    except ValidationFailed as error:
        db.rollback()
        shown = _shown(form)
        return _builder(ui, db, segment=shown, row=None, problems=_problems(error), status=400)
    return redirect(f"/ui/{ui.caller.bucket}/segments/{out['uid']}")


def _shown(form: dict[str, Any]) -> dict[str, Any]:
    """A refused form as the builder shows it again."""
    return {
        **form,
        "rules": _safe_rules(form),
        "active": bool(form.get("active")),
        "mailchimp_sync": bool(form.get("mailchimp_sync")),
    }


def _safe_rules(form: dict[str, Any]) -> list[Any]:
    try:
        rules = json.loads(str(form.get("rules") or "[]"))
    except json.JSONDecodeError:
        return []
    return rules if isinstance(rules, list) else [rules]


@router.get("/segments/{uid}/edit")
def edit_segment(ui: UiDep, db: DbSession, uid: str) -> Response:
    ui.caller.require("edit_segment")
    out, tag = service.get(db, caller=ui.caller, uid=uid)
    if out["system_segment"]:
        ui.caller.require("system_segment")
    row = service.load(db, ui.caller, uid)
    return _builder(ui, db, segment=out, row=row, etag=tag)


@router.post("/segments/{uid}/edit")
async def save_segment(request: Request, ui: UiDep, db: DbSession, uid: str) -> Response:
    form = await checked_form(request, ui)
    try:
        params = definition_params(form)
        service.update(
            db,
            caller=ui.caller,
            uid=uid,
            params=params,
            partial=True,
            if_match=str(form.get("etag") or "") or None,
        )
    except ValidationFailed as error:
        db.rollback()
        row = service.load(db, ui.caller, uid)
        shown = _shown(form)
        return _builder(
            ui, db, segment=shown, row=row, problems=_problems(error), status=400,
            etag=str(form.get("etag") or ""),
        )  # fmt: skip
    return redirect(f"/ui/{ui.caller.bucket}/segments/{uid}")


def _descendants(db: Session, bucket: str, uid: str) -> list[Segment]:
    out: list[Segment] = []
    for child in repository.live_children(db, bucket=bucket, uid=uid):
        out.append(child)
        out.extend(_descendants(db, bucket, child.uid))
    return out


@router.get("/segments/{uid}/delete")
def confirm_delete(ui: UiDep, db: DbSession, uid: str) -> Response:
    ui.caller.require("delete_segment")
    row = service.load(db, ui.caller, uid)
    return page(
        "delete.html",
        ui,
        db,
        current=row.uid,
        row=row,
        descendants=_descendants(db, ui.caller.bucket, uid),
    )


@router.post("/segments/{uid}/delete")
async def delete_segment(request: Request, ui: UiDep, db: DbSession, uid: str) -> Response:
    form = await checked_form(request, ui)
    service.delete(db, caller=ui.caller, uid=uid, cascade=bool(form.get("cascade")))
    return redirect(f"/ui/{ui.caller.bucket}/")


@router.post("/segments/{uid}/restore")
async def restore_segment(request: Request, ui: UiDep, db: DbSession, uid: str) -> Response:
    await checked_form(request, ui)
    service.restore(db, caller=ui.caller, uid=uid)
    return redirect(f"/ui/{ui.caller.bucket}/segments/{uid}")


__all__ = ["CSRF_FIELD", "router"]
