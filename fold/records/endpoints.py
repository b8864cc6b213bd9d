"""HTTP for records (SPEC 6): thin wrappers over fold.records.service."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from fold.api.deps import CallerDep, DbSession, JsonBody
from fold.api.routing import OBJECT_BODY, Router, error_responses, plain_json, route
from fold.db.bulk import analyze
from fold.errors import UnsupportedMediaType
from fold.fields import service as fields
from fold.paging import Paging
from fold.records import bulk, service
from fold.records.schemas import (
    DisplayValue,
    Field,
    ImportResult,
    Record,
    RecordPage,
    ResourceTypes,
    TypeFields,
)

router = Router(prefix="/api/v2/{bucket}", tags=["records"])

IMPORT_TYPES = {
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/json-lines": "ndjson",
    "text/csv": "csv",
    "application/csv": "csv",
}


@route(router, ["GET"], "/", answer=ResourceTypes)
def resource_types(caller: CallerDep, session: DbSession) -> dict[str, Any]:
    """Resource types of the bucket with their active record count and last change."""
    caller.require("read")
    return service.summary(session, caller=caller)


@route(router, ["GET"], "/{resource_type}/fields", answer=TypeFields)
def list_fields(caller: CallerDep, session: DbSession, resource_type: str) -> dict[str, Any]:
    """The field schema of a resource type, custom fields included."""
    caller.require("read")
    fields.check_resource_type(resource_type)
    return fields.schema_out(
        fields.schema_for(session, bucket=caller.bucket, resource_type=resource_type)
    )


@route(
    router,
    ["POST"],
    "/{resource_type}/fields",
    answer=Field,
    data_body=True,
    status_code=201,
    openapi_extra=OBJECT_BODY,
)
def add_field(
    caller: CallerDep, session: DbSession, resource_type: str, body: JsonBody
) -> dict[str, Any]:
    """Declare a custom field (`field`, `type`, `label`) on a resource type (admin)."""
    caller.require("manage_fields")
    fields.check_resource_type(resource_type)
    if not isinstance(body, dict):
        body = {}
    created = fields.add_custom_field(
        session, bucket=caller.bucket, resource_type=resource_type, body=body
    )
    return fields.field_out(created)


@route(
    router,
    ["POST"],
    "/{resource_type}/import",
    accepts=("format",),
    data_body=True,
    answer=ImportResult,
    responses=error_responses(400, 401, 403, 404, 413, 415, 429),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            },
        }
    },
)
async def import_records(
    request: Request, caller: CallerDep, session: DbSession, resource_type: str
) -> dict[str, Any]:
    """Upsert NDJSON or CSV rows, matched on uid or the type's unique field."""
    caller.require("write_records")
    fields.check_resource_type(resource_type)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = request.query_params.get("format") or IMPORT_TYPES.get(kind)
    if kind == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise UnsupportedMediaType("Send the file in a form field named 'file'.", param="file")
        raw = await upload.read()
        fmt = fmt or ("csv" if (upload.filename or "").endswith(".csv") else "ndjson")
    else:
        raw = await request.body()
    if fmt not in ("csv", "ndjson"):
        raise UnsupportedMediaType(
            "Send NDJSON (application/x-ndjson) or CSV (text/csv), or name ?format=csv|ndjson.",
            param="content-type",
        )
    text = raw.decode("utf-8-sig", errors="replace")
    schema = fields.schema_for(session, bucket=caller.bucket, resource_type=resource_type)
    result = await run_in_threadpool(
        bulk.import_rows,
        session,
        bucket=caller.bucket,
        user_uri=caller.user_uri,
        schema=schema,
        rows=bulk.rows_from_text(text, fmt),
    )
    if result.rows > 10_000:
        analyze(session, "records", "audit_entries")
    return result.as_dict()


@route(
    router,
    ["POST"],
    "/{resource_type}/",
    answer=Record,
    data_body=True,
    status_code=201,
    openapi_extra=OBJECT_BODY,
)
def create_record(
    caller: CallerDep, session: DbSession, resource_type: str, body: JsonBody
) -> JSONResponse:
    """Create a record; Fold adds uid, uri, dates, state and display value."""
    out = service.create(session, caller=caller, resource_type=resource_type, body=body)
    return plain_json(out, 201)


@route(router, ["GET"], "/{resource_type}/", answer=RecordPage, accepts=service.is_list_param)
def list_records(
    request: Request, caller: CallerDep, session: DbSession, resource_type: str
) -> dict[str, Any]:
    """Records of a type, paged; other query parameters filter by field (`mode=AND|OR`)."""
    caller.require("read")
    params = dict(request.query_params)
    return service.list_page(
        session,
        caller=caller,
        resource_type=resource_type,
        query=service.read_list_query(params),
        paging=Paging.read(params),
    )


@route(router, ["GET"], "/{resource_type}/{uid}/", answer=Record)
def read_record(
    caller: CallerDep, session: DbSession, resource_type: str, uid: str
) -> dict[str, Any]:
    caller.require("read")
    return service.get(session, caller=caller, resource_type=resource_type, uid=uid)


@route(
    router,
    ["PUT"],
    "/{resource_type}/{uid}/",
    answer=Record,
    data_body=True,
    openapi_extra=OBJECT_BODY,
)
def replace_record(
    caller: CallerDep, session: DbSession, resource_type: str, uid: str, body: JsonBody
) -> dict[str, Any]:
    """Replace every field of a record."""
    return service.replace(session, caller=caller, resource_type=resource_type, uid=uid, body=body)


@route(
    router,
    ["PATCH"],
    "/{resource_type}/{uid}/",
    answer=Record,
    data_body=True,
    openapi_extra=OBJECT_BODY,
)
def patch_record(
    caller: CallerDep, session: DbSession, resource_type: str, uid: str, body: JsonBody
) -> JSONResponse:
    """Change the fields sent (a JSON merge patch: null removes a field)."""
    out = service.patch(session, caller=caller, resource_type=resource_type, uid=uid, body=body)
    return plain_json(out)


@route(router, ["DELETE"], "/{resource_type}/{uid}/", answer=Record)
def delete_record(
    caller: CallerDep, session: DbSession, resource_type: str, uid: str
) -> dict[str, Any]:
    """Soft-delete a record (admin); restore brings it back."""
    return service.delete(session, caller=caller, resource_type=resource_type, uid=uid)


@route(router, ["POST"], "/{resource_type}/{uid}/restore", answer=Record)
def restore_record(
    caller: CallerDep, session: DbSession, resource_type: str, uid: str
) -> dict[str, Any]:
    """Undo a delete (admin)."""
    return service.restore(session, caller=caller, resource_type=resource_type, uid=uid)


@route(router, ["GET"], "/{resource_type}/{uid}/display", answer=DisplayValue)
def display(caller: CallerDep, session: DbSession, resource_type: str, uid: str) -> dict[str, Any]:
    caller.require("read")
    record = service.get(session, caller=caller, resource_type=resource_type, uid=uid)
    return {"display_value": record["display_value"]}
