"""HTTP for jobs: starting bulk actions on a segment, and reading, cancelling and undoing
jobs as `sheep_event` records."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from fold.api.deps import CallerDep, DbSession, Params
from fold.api.routing import OBJECT_BODY, Router, error_responses, route
from fold.jobs import service
from fold.jobs.schemas import BulkReceipt, Job, JobPage, JobReceipt

actions = Router(prefix="/segments/v2/{bucket}/segment/{uid}", tags=["jobs"])
jobs = Router(prefix="/api/v2/{bucket}/sheep_event", tags=["jobs"])
action_records = Router(prefix="/api/v2/{bucket}/action", tags=["jobs"])
ERRORS = error_responses(400, 401, 403, 404, 409, 415, 429)


@route(
    actions,
    ["POST"],
    "/action",
    answer=JobReceipt,
    accepts=service.ACTION_PARAMS,
    responses=ERRORS,
    openapi_extra=OBJECT_BODY,
)
def start_action(
    request: Request, caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """Start a bulk action (`action`, `value`, `field`, `description`) on the segment."""
    state = request.app.state
    return service.start_action(
        session, caller=caller, uid=uid, params=params, queue=state.queue, settings=state.settings
    )


@route(
    actions,
    ["POST"],
    "/action/replace",
    answer=BulkReceipt,
    accepts=service.BULK_PARAMS,
    responses=ERRORS,
    openapi_extra=OBJECT_BODY,
)
def replace_all(
    request: Request, caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """Re-save every record of the segment so derived fields are recomputed."""
    return service.start_bulk(
        session,
        caller=caller,
        uid=uid,
        params=params,
        queue=request.app.state.queue,
        kind="replace",
    )


@route(
    actions,
    ["POST"],
    "/action/delete",
    answer=BulkReceipt,
    accepts=service.BULK_PARAMS,
    responses=ERRORS,
    openapi_extra=OBJECT_BODY,
)
def delete_all(
    request: Request, caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """Soft-delete every record of the segment (admin; safe mode by default)."""
    return service.start_bulk(
        session, caller=caller, uid=uid, params=params, queue=request.app.state.queue, kind="delete"
    )


@route(jobs, ["GET"], "/", answer=JobPage, accepts=service.LIST_PARAMS)
def list_jobs(caller: CallerDep, session: DbSession, params: Params) -> dict[str, Any]:
    """The bucket's jobs, newest first."""
    return service.list_jobs(session, caller=caller, params=params)


@route(jobs, ["GET"], "/{job_uid}/", answer=Job)
def read_job(caller: CallerDep, session: DbSession, job_uid: str) -> dict[str, Any]:
    """A job's status, totals, first errors, start and end."""
    caller.require("read")
    return service.job_out(service.load_job(session, caller, job_uid))


@route(jobs, ["POST"], "/{job_uid}/cancel", answer=Job, responses=ERRORS)
def cancel_job(caller: CallerDep, session: DbSession, job_uid: str) -> dict[str, Any]:
    """Stop a job between batches; its totals tell what was done."""
    return service.cancel(session, caller=caller, uid=job_uid)


@route(jobs, ["POST"], "/{job_uid}/undo", answer=Job, responses=ERRORS)
def undo_job(
    request: Request, caller: CallerDep, session: DbSession, job_uid: str
) -> dict[str, Any]:
    """Revert a completed job's field changes, tags and deletes (as a new job)."""
    return service.undo(session, caller=caller, uid=job_uid, queue=request.app.state.queue)


@route(action_records, ["GET"], "/{action_uid}/")
def read_action(caller: CallerDep, session: DbSession, action_uid: str) -> dict[str, Any]:
    """The action a receipt's `action` URI names: action, field, value, status and its job."""
    caller.require("read")
    return service.action_out(service.load_job(session, caller, action_uid))
