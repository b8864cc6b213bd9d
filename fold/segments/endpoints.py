"""HTTP for segments (SPEC 2.6 and 12): thin wrappers over the service and reads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse

from fold.api.deps import CallerDep, DbSession, Params
from fold.api.routing import OBJECT_BODY, Router, error_responses, plain_json, route
from fold.params import read_flag
from fold.rules.jsonschema import rules_schema
from fold.segments import explain, fieldsets, reads, service, snapshots
from fold.segments.inputs import ANSWERED_FIELDS, FIELDS
from fold.segments.schemas import (
    Config,
    Count,
    Explanation,
    Fieldset,
    FieldsetPage,
    LookupItem,
    Members,
    Preview,
    Segment,
    SegmentPage,
    Trees,
    Validation,
)

schema_router = Router(tags=["segments"])
router = Router(prefix="/segments/v2/{bucket}", tags=["segments"])
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 412, 413, 415, 429)
PAGING = ("page", "page_size")
# A definition's fields, and those of the segment Fold answers, so one posted back round-trips.
DEFINITION = (*FIELDS, *ANSWERED_FIELDS)
RECORDS_PAGE = (*PAGING, "q", "verbose", "sort")
PREVIEW = (*DEFINITION, *RECORDS_PAGE)


def with_etag(body: dict[str, Any], tag: str, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"ETag": tag})


@route(schema_router, ["GET"], "/segments/v2/schema/rules.json")
def rules_json_schema() -> dict[str, Any]:
    """The rule language as a JSON Schema. Needs no key."""
    return rules_schema()


@route(router, ["GET"], "", answer=SegmentPage, accepts=PAGING)
def active_segments(caller: CallerDep, session: DbSession, params: Params) -> dict[str, Any]:
    """Active, non-deleted segments."""
    return reads.listing(session, caller, params, active_only=True)


@route(router, ["GET"], "/all", answer=SegmentPage, accepts=(*PAGING, "include_deleted"))
def all_segments(caller: CallerDep, session: DbSession, params: Params) -> dict[str, Any]:
    """Every non-deleted segment, inactive too; `include_deleted=true` adds deleted ones."""
    return reads.listing(session, caller, params, active_only=False, deleted_param=True)


@route(
    router,
    ["POST"],
    "/create",
    answer=Segment,
    accepts=DEFINITION,
    status_code=201,
    responses=WRITE_ERRORS,
    openapi_extra=OBJECT_BODY,
)
def create_segment(caller: CallerDep, session: DbSession, params: Params) -> JSONResponse:
    """Create a segment from a JSON body, a form or the query string."""
    body, tag = service.create(session, caller=caller, params=params)
    return with_etag(body, tag, 201)


@route(router, ["GET"], "/find", answer=SegmentPage, accepts=(*PAGING, "name"))
def find_segments(caller: CallerDep, session: DbSession, params: Params) -> dict[str, Any]:
    """Active segments whose name contains `name`, ignoring case."""
    name = params.get("name")
    return reads.listing(session, caller, params, active_only=True, name=str(name or ""))


@route(router, ["GET"], "/trees", answer=Trees)
def segment_trees(caller: CallerDep, session: DbSession) -> dict[str, Any]:
    """The hierarchy: root segments with their `children` nested."""
    return reads.trees(session, caller)


@route(
    router,
    ["POST"],
    "/preview",
    answer=Preview,
    reads_only=True,
    accepts=PREVIEW,
    openapi_extra=OBJECT_BODY,
)
def preview(caller: CallerDep, session: DbSession, params: Params) -> dict[str, Any]:
    """Count, first page and sentence of an unsaved definition; nothing is saved."""
    return reads.preview(session, caller, params)


@route(
    router,
    ["POST"],
    "/validate",
    answer=Validation,
    reads_only=True,
    accepts=DEFINITION,
    openapi_extra=OBJECT_BODY,
)
def validate(caller: CallerDep, session: DbSession, params: Params) -> dict[str, Any]:
    """Every problem of a definition, each with its param; nothing is saved."""
    return reads.validate(session, caller, params)


@route(router, ["GET"], "/fieldset", answer=FieldsetPage, accepts=(*PAGING, "resource"))
def list_fieldsets(caller: CallerDep, session: DbSession, params: Params) -> dict[str, Any]:
    return fieldsets.list_fieldsets(session, caller, params)


@route(
    router,
    ["POST"],
    "/fieldset",
    answer=Fieldset,
    accepts=fieldsets.ACCEPTS,
    status_code=201,
    openapi_extra=OBJECT_BODY,
)
def create_fieldset(caller: CallerDep, session: DbSession, params: Params) -> dict[str, Any]:
    """Create a fieldset; `resource=person` without `fields` takes every person field."""
    return fieldsets.create_fieldset(session, caller, params)


@route(router, ["DELETE"], "/fieldset", answer=Fieldset, accepts=("uid",))
def delete_fieldset(caller: CallerDep, session: DbSession, params: Params) -> dict[str, Any]:
    """Delete the fieldset named by `uid`; a locked one is refused (403)."""
    return fieldsets.delete_fieldset(session, caller, params.get("uid"))


@route(router, ["GET"], "/fieldset/{uid}", answer=Fieldset)
def get_fieldset(caller: CallerDep, session: DbSession, uid: str) -> dict[str, Any]:
    return fieldsets.get_fieldset(session, caller, uid)


@route(router, ["DELETE"], "/fieldset/{uid}", answer=Fieldset)
def delete_fieldset_by_path(caller: CallerDep, session: DbSession, uid: str) -> dict[str, Any]:
    return fieldsets.delete_fieldset(session, caller, uid)


@route(router, ["GET"], "/segment/{uid}", answer=Segment)
def get_segment(caller: CallerDep, session: DbSession, uid: str) -> JSONResponse:
    body, tag = service.get(session, caller=caller, uid=uid)
    return with_etag(body, tag)


def _update(
    caller: Any, session: Any, uid: str, params: dict[str, Any], partial: bool, if_match: str | None
) -> JSONResponse:
    body, tag = service.update(
        session, caller=caller, uid=uid, params=params, partial=partial, if_match=if_match
    )
    return with_etag(body, tag)


@route(
    router,
    ["PUT"],
    "/segment/{uid}",
    answer=Segment,
    accepts=DEFINITION,
    responses=WRITE_ERRORS,
    openapi_extra=OBJECT_BODY,
)
def replace_segment(
    caller: CallerDep,
    session: DbSession,
    uid: str,
    params: Params,
    if_match: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Replace the definition (fields not sent take their defaults); `If-Match` guards it."""
    return _update(caller, session, uid, params, False, if_match)


@route(
    router,
    ["PATCH"],
    "/segment/{uid}",
    answer=Segment,
    accepts=DEFINITION,
    responses=WRITE_ERRORS,
    openapi_extra=OBJECT_BODY,
)
def patch_segment(
    caller: CallerDep,
    session: DbSession,
    uid: str,
    params: Params,
    if_match: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Change only the fields sent; `If-Match` with the last ETag makes it conditional."""
    return _update(caller, session, uid, params, True, if_match)


@route(
    router,
    ["DELETE"],
    "/segment/{uid}",
    answer=Segment,
    accepts=("cascade",),
    responses=WRITE_ERRORS,
)
def delete_segment(
    caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """Soft delete; `cascade=true` deletes live children too (409 without it)."""
    return service.delete(session, caller=caller, uid=uid, cascade=read_flag(params, "cascade"))


@route(
    router,
    ["POST"],
    "/segment/{uid}/restore",
    answer=Segment,
    accepts=("cascade",),
    responses=WRITE_ERRORS,
)
def restore_segment(
    caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """Undo a delete; `cascade=true` also restores the children that delete took."""
    return service.restore(session, caller=caller, uid=uid, cascade=read_flag(params, "cascade"))


@route(router, ["GET"], "/segment/{uid}/config", answer=Config)
def segment_config(caller: CallerDep, session: DbSession, uid: str) -> dict[str, Any]:
    """How to show the segment's records: fields, list fields, search and sort."""
    return reads.config(session, caller, reads.load_for_read(session, caller, uid))


@route(router, ["GET"], "/segment/{uid}/count", answer=Count, accepts=("as_of",))
def segment_count(caller: CallerDep, session: DbSession, uid: str, params: Params) -> JSONResponse:
    """`{count, description, segment}`; the description is the rules' sentence if unset.
    `as_of` (a date-time or snapshot uid) answers from the snapshot then, and says which."""
    row = reads.load_for_read(session, caller, uid)
    if params.get("as_of") not in (None, ""):
        return plain_json(snapshots.count_as_of(session, row, params["as_of"]))
    return plain_json(reads.segment_count(session, caller, row))


@route(router, ["GET"], "/segment/{uid}/lookup", answer=list[LookupItem], accepts=("q",))
def segment_lookup(
    caller: CallerDep, session: DbSession, uid: str, params: Params
) -> list[dict[str, Any]]:
    """Up to 10 records of the segment matching `q`, for autocomplete."""
    row = reads.load_for_read(session, caller, uid)
    q = params.get("q")
    return reads.lookup(session, row, q if isinstance(q, str) else None)


@route(router, ["GET"], "/segment/{uid}/all", answer=Members, accepts=(*RECORDS_PAGE, "as_of"))
def segment_records(
    caller: CallerDep, session: DbSession, uid: str, params: Params
) -> JSONResponse:
    """The records, paged; `q` searches, `verbose=true` gives whole records, `sort=[-]field`;
    `as_of` pages the members of the snapshot then (and says which)."""
    row = reads.load_for_read(session, caller, uid)
    if params.get("as_of") not in (None, ""):
        return plain_json(snapshots.records_as_of(session, row, params))
    return plain_json(reads.segment_records(session, caller, row, params))


@route(router, ["GET"], "/segment/{uid}/explain", answer=Explanation, accepts=("uri",))
def explain_segment(
    caller: CallerDep, session: DbSession, uid: str, params: Params
) -> dict[str, Any]:
    """The count after each rule in turn; with `uri`, why that record is in or out."""
    row = reads.load_for_read(session, caller, uid)
    uri = params.get("uri")
    if uri:
        return explain.for_record(session, caller, row, str(uri))
    return explain.funnel(session, caller, row)


@route(router, ["GET"], "/{view_context}", answer=SegmentPage, accepts=PAGING)
def view_context_segments(
    caller: CallerDep, session: DbSession, view_context: str, params: Params
) -> dict[str, Any]:
    """Active segments with that view context; an unknown one is a 400 listing the valid."""
    return reads.listing(session, caller, params, active_only=True, view_context=view_context)
