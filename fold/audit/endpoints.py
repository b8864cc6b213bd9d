"""HTTP for the audit trail: the bucket's entries, and one record's."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from fastapi import Request

from fold.api.deps import CallerDep, DbSession
from fold.api.routing import Router, route
from fold.audit.schemas import AuditAnswer
from fold.audit.service import AuditQuery, list_entries
from fold.errors import ValidationFailed
from fold.fields.service import check_resource_type
from fold.ids import is_uid
from fold.paging import read_int
from fold.timefmt import parse_datetime

MAX_SKIP = 2**31 - 1
"""Far beyond any trail; bounded so the database never sees an integer it cannot hold."""

router = Router(prefix="/audit/v2/{bucket}", tags=["audit"])
# Besides records, segments and fieldsets leave audit entries.
AUDITED_KINDS = ("segment", "fieldset")
QUERY_PARAMS = ("limit", "skip", "from", "to", "format")


def _when(params: dict[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_datetime(raw)
    except ValueError:
        raise ValidationFailed(
            f"'{name}' must be an ISO 8601 date or date-time.", param=name
        ) from None


def _query(params: dict[str, str], **fixed: Any) -> tuple[AuditQuery, str]:
    fmt = params.get("format", "json")
    if fmt not in ("json", "list"):
        raise ValidationFailed("'format' must be json or list.", param="format")
    resource = params.get("resource")
    if resource and resource not in AUDITED_KINDS:
        check_resource_type(resource, param="resource")
    query = AuditQuery(
        limit=read_int(params.get("limit"), param="limit", default=100, low=1, high=1000),
        skip=read_int(params.get("skip"), param="skip", default=0, low=0, high=MAX_SKIP),
        date_from=_when(params, "from"),
        date_to=_when(params, "to"),
        resource_type=resource or None,
        **fixed,
    )
    return query, fmt


def _answer(entries: list[dict[str, Any]], total: int, query: AuditQuery, fmt: str) -> Any:
    if fmt == "list":
        return entries
    return {"audit": entries, "total": total, "limit": query.limit, "skip": query.skip}


@route(router, ["GET"], "/audit", answer=AuditAnswer, accepts=(*QUERY_PARAMS, "resource"))
def bucket_audit(request: Request, caller: CallerDep, session: DbSession) -> Any:
    """Every audit entry of the bucket, newest first; `format=list` answers a bare array."""
    caller.require("read")
    query, fmt = _query(dict(request.query_params))
    entries, total = list_entries(session, bucket=caller.bucket, query=query)
    return _answer(entries, total, query, fmt)


@route(router, ["GET"], "/{resource_type}/{uid}/audit", answer=AuditAnswer, accepts=QUERY_PARAMS)
def record_audit(
    request: Request, caller: CallerDep, session: DbSession, resource_type: str, uid: str
) -> Any:
    """The audit entries of one record, newest first."""
    caller.require("read")
    if resource_type not in AUDITED_KINDS:
        check_resource_type(resource_type, stored=False)
    if not is_uid(uid):
        raise ValidationFailed("A uid is 24 hex characters.", param="uid")
    params = dict(request.query_params)
    params.pop("resource", None)
    query, fmt = _query(params, record_uid=uid)
    query = replace(query, resource_type=resource_type)
    entries, total = list_entries(session, bucket=caller.bucket, query=query)
    return _answer(entries, total, query, fmt)
