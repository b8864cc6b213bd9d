"""HTTP for a segment's history (SPEC 12): versions with diff and revert, membership
snapshots and their schedule, who entered and who left."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse

from fold.api.deps import CallerDep, DbSession, Params
from fold.api.routing import OBJECT_BODY, Router, error_responses, route
from fold.segments import reads, schedules, service, snapshots, versions
from fold.segments.schemas import Segment

router = Router(prefix="/segments/v2/{bucket}", tags=["segment history"])
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 412, 429)
PAGING = ("page", "page_size")


@route(router, ["GET"], "/segment/{uid}/versions", accepts=PAGING)
def list_versions(
    caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """The segment's versions, newest first, each with the fields it changed."""
    row = reads.load_for_read(session, caller, uid)
    return versions.listing(session, row, params)


@route(router, ["GET"], "/segment/{uid}/versions/{number}")
def get_version(caller: CallerDep, session: DbSession, uid: str, number: str) -> dict[str, Any]:
    """One version: who made it, when, how, and the whole definition."""
    row = reads.load_for_read(session, caller, uid)
    found = versions.get(session, row, versions.read_number(number, "number"))
    return versions.version_out(row, found, full=True)


@route(router, ["GET"], "/segment/{uid}/versions/{a}/diff/{b}")
def diff_versions(
    caller: CallerDep, session: DbSession, uid: str, a: str, b: str
) -> dict[str, Any]:
    """From version a to b: fields changed, rules and list URIs added and removed."""
    row = reads.load_for_read(session, caller, uid)
    return versions.diff(session, row, versions.read_number(a, "a"), versions.read_number(b, "b"))


@route(
    router,
    ["POST"],
    "/segment/{uid}/versions/{number}/revert",
    answer=Segment,
    responses=WRITE_ERRORS,
)
def revert_version(
    caller: CallerDep,
    session: DbSession,
    uid: str,
    number: str,
    if_match: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Make the definition version `number`'s again, as a new version; `If-Match` guards it."""
    body, tag = service.revert(
        session,
        caller=caller,
        uid=uid,
        number=versions.read_number(number, "number"),
        if_match=if_match,
    )
    return JSONResponse(body, headers={"ETag": tag})


@route(router, ["POST"], "/segment/{uid}/snapshots", status_code=201, responses=WRITE_ERRORS)
def take_snapshot(caller: CallerDep, session: DbSession, uid: str) -> dict[str, Any]:
    """Store who is in the segment now."""
    return snapshots.take_manual(session, caller=caller, uid=uid)


@route(router, ["GET"], "/segment/{uid}/snapshots", accepts=PAGING)
def list_snapshots(
    caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """The segment's snapshots, newest first, with their counts."""
    row = reads.load_for_read(session, caller, uid)
    return snapshots.listing(session, row, params)


@route(router, ["GET"], "/segment/{uid}/snapshots/schedule")
def get_schedule(caller: CallerDep, session: DbSession, uid: str) -> dict[str, Any]:
    """When snapshots are taken (`daily`, `weekly` or cron, UTC) and how long kept."""
    return schedules.get(session, reads.load_for_read(session, caller, uid))


@route(
    router,
    ["PUT"],
    "/segment/{uid}/snapshots/schedule",
    accepts=("schedule", "keep_last", "keep_days", "segment", "next_run"),
    responses=WRITE_ERRORS,
    openapi_extra=OBJECT_BODY,
)
def put_schedule(caller: CallerDep, session: DbSession, uid: str, params: Params) -> dict[str, Any]:
    """Set `schedule`, `keep_last` and `keep_days` (unsent ones are cleared)."""
    return schedules.put_for(session, caller=caller, uid=uid, params=params)


@route(
    router,
    ["GET"],
    "/segment/{uid}/changes",
    accepts=(*PAGING, "since", "until", "change", "verbose"),
)
def membership_changes(
    caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """Who entered and who left since `since` (a date-time or snapshot uid) until `until`
    (the same, default now), paged, with counts; `change=entered|left` narrows."""
    row = reads.load_for_read(session, caller, uid)
    return snapshots.changes(session, row, params)
