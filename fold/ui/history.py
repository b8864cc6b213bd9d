"""A segment's history in the web interface (SPEC 12): its versions with a diff against the
current one and revert, and who entered and who left since a date, with a snapshot taken on
demand. The same service calls as the API (fold/segments/history.py), so the policy and the
ETag guard are the API's; every write form carries the session's CSRF token."""

from __future__ import annotations

from datetime import date

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fold.api.deps import DbSession
from fold.api.routing import Router
from fold.db.models import Segment, SegmentVersion
from fold.errors import ValidationFailed
from fold.segments import reads, service, snapshots, versions
from fold.timefmt import utcnow
from fold.ui.pages import page
from fold.ui.render import UiRoute
from fold.ui.session import UiDep, checked_form, redirect

router = Router(prefix="/ui/{bucket}", route_class=UiRoute, include_in_schema=False)
CHANGES_PAGE_SIZE = 50


def latest_version(db: Session, row: Segment) -> int | None:
    number = db.scalar(
        select(func.max(SegmentVersion.number)).where(
            SegmentVersion.bucket == row.bucket, SegmentVersion.segment_uid == row.uid
        )
    )
    return int(number) if number is not None else None


@router.get("/segments/{uid}/versions/{number}")
def version_page(ui: UiDep, db: DbSession, uid: str, number: str) -> Response:
    """Version `number` against the current one, with Revert for those who can edit."""
    row = reads.load_for_read(db, ui.caller, uid)
    chosen = versions.read_number(number, "number")
    found = versions.get(db, row, chosen)
    current = latest_version(db, row) or chosen
    _, etag = service.get(db, caller=ui.caller, uid=uid)
    return page(
        "version.html",
        ui,
        db,
        current=row.uid,
        row=row,
        segment=service.segment_out(db, ui.caller, row),
        version=versions.version_out(row, found, full=True),
        latest=current,
        diff=versions.diff(db, row, chosen, current),
        etag=etag,
    )


@router.post("/segments/{uid}/versions/{number}/revert")
async def revert_version(
    request: Request, ui: UiDep, db: DbSession, uid: str, number: str
) -> Response:
    form = await checked_form(request, ui)
    service.revert(
        db,
        caller=ui.caller,
        uid=uid,
        number=versions.read_number(number, "number"),
        if_match=str(form.get("etag") or "") or None,
    )
    return redirect(f"/ui/{ui.caller.bucket}/segments/{uid}")


def since_of(raw: str) -> str:
    """A date from the date picker as the end of that day in UTC: the latest snapshot taken
    on or before that day is the starting point."""
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        message = f"since is a date (YYYY-MM-DD); got {raw!r}."
        raise ValidationFailed(message, param="since") from None
    return f"{day.isoformat()}T23:59:59Z"


@router.get("/segments/{uid}/changes")
def changes_page(request: Request, ui: UiDep, db: DbSession, uid: str) -> Response:
    """Who entered and who left since a date, with counts."""
    row = reads.load_for_read(db, ui.caller, uid)
    raw = (request.query_params.get("since") or "").strip()
    kind = request.query_params.get("change") or ""
    page_number = request.query_params.get("page") or "1"
    found = None
    if raw:
        params = {"since": since_of(raw), "page": page_number, "page_size": CHANGES_PAGE_SIZE}
        if kind:
            params["change"] = kind
        found = snapshots.changes(db, row, params)
    listed = snapshots.listing(db, row, {"page": 1, "page_size": 10})
    return page(
        "changes.html",
        ui,
        db,
        current=row.uid,
        row=row,
        segment=service.segment_out(db, ui.caller, row),
        since=raw,
        change=kind,
        found=found,
        snapshots=listed,
        today=utcnow().date().isoformat(),
    )


@router.post("/segments/{uid}/snapshots")
async def take_snapshot(request: Request, ui: UiDep, db: DbSession, uid: str) -> Response:
    await checked_form(request, ui)
    ui.caller.require("edit_segment")
    row = reads.load_for_read(db, ui.caller, uid)
    snapshots.take(db, row=row, trigger="manual", user_uri=ui.caller.user_uri)
    return redirect(f"/ui/{ui.caller.bucket}/segments/{uid}/changes")
