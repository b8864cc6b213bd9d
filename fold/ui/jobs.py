"""Bulk actions and exports from the web interface: the action form, the export form, and a
job's page whose progress bar follows it to its end, with cancel and undo, and an export's
download link once its file is written."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from fold.api.deps import DbSession
from fold.api.routing import Router
from fold.errors import ValidationFailed
from fold.exports import service as exports
from fold.ids import uid_of
from fold.jobs import service as jobs
from fold.jobs.actions import ACTIONS, action_for
from fold.mailchimp import service as mailchimp
from fold.segments import reads
from fold.ui.pages import page
from fold.ui.render import UiRoute, render
from fold.ui.session import UiDep, checked_form, redirect

router = Router(prefix="/ui/{bucket}", route_class=UiRoute, include_in_schema=False)
FINISHED = ("completed", "failed", "cancelled")
# htmx stops polling when a poll answers 286.
STOP_POLLING = 286
# The export form's formats: the export API's format and, for a PDF, its layout.
EXPORT_FORMATS = {"xlsx": ("xlsx", None), "pdf": ("pdf", None), "labels": ("pdf", "labels")}


@router.get("/segments/{uid}/action")
def action_form(ui: UiDep, db: DbSession, uid: str) -> Response:
    ui.caller.require("run_actions")
    row = reads.load_for_read(db, ui.caller, uid)
    counted = reads.segment_count(db, ui.caller, row)
    return page(
        "action.html", ui, db, current=row.uid, row=row, counted=counted, actions=list(ACTIONS)
    )


@router.post("/segments/{uid}/action")
async def start_action(request: Request, ui: UiDep, db: DbSession, uid: str) -> Response:
    form = await checked_form(request, ui)
    params = {k: v for k, v in form.items() if k in ("action", "value", "field", "description")}
    if not params.get("field"):
        params.pop("field", None)
    state = request.app.state
    receipt = jobs.start_action(
        db, caller=ui.caller, uid=uid, params=params, queue=state.queue, settings=state.settings
    )
    job_uid = uid_of(receipt["sheep_event"])
    return redirect(f"/ui/{ui.caller.bucket}/jobs/{job_uid}")


@router.post("/segments/{uid}/sync_mailchimp")
async def sync_mailchimp(request: Request, ui: UiDep, db: DbSession, uid: str) -> Response:
    """Sync the segment to Mailchimp now (or follow the sync already under way)."""
    await checked_form(request, ui)
    state = request.app.state
    receipt = mailchimp.start_sync(
        db, caller=ui.caller, uid=uid, params={}, queue=state.queue, settings=state.settings
    )
    job_uid = uid_of(receipt["journal_uri"])
    return redirect(f"/ui/{ui.caller.bucket}/jobs/{job_uid}")


@router.post("/segments/{uid}/export")
async def start_export(request: Request, ui: UiDep, db: DbSession, uid: str) -> Response:
    """Start an .xlsx, PDF table or address-label export of the segment (in the columns of
    a fieldset, when one is chosen) and follow it on its job's page."""
    form = await checked_form(request, ui)
    chosen = form.get("format") or "xlsx"
    if not isinstance(chosen, str) or chosen not in EXPORT_FORMATS:
        raise ValidationFailed(
            f"{chosen!r} is not an export format; choose one of {', '.join(EXPORT_FORMATS)}.",
            param="format",
        )
    report_format, layout = EXPORT_FORMATS[chosen]
    # Labels have a layout of their own; the other formats take the fieldset's columns.
    template = layout or form.get("fieldset") or None
    receipt = exports.start_export(
        db,
        caller=ui.caller,
        uid=uid,
        params={} if template is None else {"template": template},
        report_format=report_format,
        queue=request.app.state.queue,
    )
    job_uid = uid_of(receipt["journal_uri"])
    return redirect(f"/ui/{ui.caller.bucket}/jobs/{job_uid}")


def _job_context(ui: UiDep, db: DbSession, job_uid: str) -> dict[str, Any]:
    job = jobs.job_out(jobs.load_job(db, ui.caller, job_uid))
    undoable = (
        job["status"] == "completed"
        and job["action"] in ACTIONS
        and action_for(str(job["action"])).undoable
    )
    journal = None
    if job["action"] == exports.EXPORT_ACTION:
        journal = exports.read_journal(db, ui.caller, job_uid)
    return {
        "job": job,
        "finished": job["status"] in FINISHED,
        "undoable": undoable,
        "journal": journal,
    }


@router.get("/jobs/{job_uid}")
def job_page(ui: UiDep, db: DbSession, job_uid: str) -> Response:
    ui.caller.require("read")
    return page("job.html", ui, db, **_job_context(ui, db, job_uid))


@router.get("/jobs/{job_uid}/progress")
def job_progress(ui: UiDep, db: DbSession, job_uid: str) -> Response:
    """The progress fragment the job page polls; the last poll stops the polling."""
    ui.caller.require("read")
    context = _job_context(ui, db, job_uid)
    status = STOP_POLLING if context["finished"] else 200
    return render(
        "progress.html", status, ui=ui, can=ui.caller.can, bucket=ui.caller.bucket, **context
    )


@router.post("/jobs/{job_uid}/cancel")
async def cancel_job(request: Request, ui: UiDep, db: DbSession, job_uid: str) -> Response:
    await checked_form(request, ui)
    jobs.cancel(db, caller=ui.caller, uid=job_uid)
    return redirect(f"/ui/{ui.caller.bucket}/jobs/{job_uid}")


@router.post("/jobs/{job_uid}/undo")
async def undo_job(request: Request, ui: UiDep, db: DbSession, job_uid: str) -> Response:
    await checked_form(request, ui)
    out = jobs.undo(db, caller=ui.caller, uid=job_uid, queue=request.app.state.queue)
    return redirect(f"/ui/{ui.caller.bucket}/jobs/{out['uid']}")
